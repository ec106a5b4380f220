#pragma once
// An in-process dedup store: bounded by entry count and TTL. Not durable (a restart forgets
// every id: committed offsets, not this store, keep a restart from reprocessing).
//
// Not thread-safe: one per pipeline, used from that pipeline's io_context thread.

#include "daemon/dedup/store.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

namespace kpipe::dedup {

class MemoryStore final : public Store {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit MemoryStore(uint64_t max_entries, Clock clock = std::chrono::steady_clock::now);

  ReserveResult reserve(std::string_view id, std::chrono::milliseconds reservation_ttl) override;
  void confirm(std::string_view id, std::chrono::milliseconds ttl) override;
  void release(std::string_view id) override;

  size_t size() const { return entries_.size(); }
  uint64_t evictedForTest() const { return evicted_; }

 private:
  struct Entry {
    std::chrono::steady_clock::time_point expires;
    bool done = false;
  };
  void expireAndBound(std::chrono::steady_clock::time_point now);

  uint64_t max_entries_;
  Clock clock_;
  std::unordered_map<std::string, Entry> entries_;
  // Ids in the order their current expiry was set; stale pairs are skipped when swept.
  std::deque<std::pair<std::string, std::chrono::steady_clock::time_point>> expiry_order_;
  uint64_t evicted_ = 0;
};

}  // namespace kpipe::dedup
