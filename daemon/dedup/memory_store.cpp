#include "daemon/dedup/memory_store.h"

namespace kpipe::dedup {

MemoryStore::MemoryStore(uint64_t max_entries, Clock clock)
    : max_entries_(max_entries == 0 ? 1 : max_entries), clock_(std::move(clock)) {}

ReserveResult MemoryStore::reserve(std::string_view id, std::chrono::milliseconds reservation_ttl) {
  auto now = clock_();
  expireAndBound(now);
  auto [it, inserted] = entries_.try_emplace(std::string(id));
  if (!inserted && it->second.expires > now) {
    return it->second.done ? ReserveResult::Done : ReserveResult::InProgress;
  }
  it->second = Entry{now + reservation_ttl, false};
  expiry_order_.emplace_back(it->first, it->second.expires);
  return ReserveResult::New;
}

void MemoryStore::confirm(std::string_view id, std::chrono::milliseconds ttl) {
  auto now = clock_();
  auto [it, inserted] = entries_.try_emplace(std::string(id));
  it->second = Entry{now + ttl, true};
  expiry_order_.emplace_back(it->first, it->second.expires);
  expireAndBound(now);
}

void MemoryStore::release(std::string_view id) { entries_.erase(std::string(id)); }

void MemoryStore::expireAndBound(std::chrono::steady_clock::time_point now) {
  while (!expiry_order_.empty()) {
    auto& [id, expires] = expiry_order_.front();
    auto it = entries_.find(id);
    bool current = it != entries_.end() && it->second.expires == expires;
    if (!current) {  // a later reserve/confirm re-queued it, or it was released
      expiry_order_.pop_front();
      continue;
    }
    bool expired = expires <= now;
    // Over the bound, the entry whose expiry was set longest ago goes first.
    bool over_bound = entries_.size() > max_entries_;
    if (!expired && !over_bound) break;
    if (!expired) ++evicted_;
    entries_.erase(it);
    expiry_order_.pop_front();
  }
}

}  // namespace kpipe::dedup
