#include "daemon/dedup/memory_store.h"

#include "daemon/dedup/hash.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <ctime>
#include <limits>
#include <new>
#include <utility>

namespace kpipe::dedup {
namespace {

constexpr int kTagShift = 40;  // meta: tag (24 bits) | expiry (39 bits) | done (1 bit)
constexpr uint64_t kMaxExpiry = (uint64_t{1} << (kTagShift - 1)) - 1;
// The sweep frees expired slots so that they do not crowd live ids out at the bound: at 4 slots
// per operation it goes round the table once every capacity/4 operations, which add at most
// capacity/4 ids.
constexpr int kSweepSlots = 4;
constexpr int kSampleRuns = 4;  // eviction samples 4 runs of 4 used slots
constexpr int kRunSlots = 4;
constexpr size_t kInitialCapacity = 1024;
// A bound that no machine's memory reaches (over 16 TiB of slots): sizing cannot overflow.
constexpr uint64_t kMaxEntriesCap = uint64_t{1} << 40;
// Slot arrays from this size up are mapped on transparent huge pages (SlotArray).
constexpr size_t kHugePage = size_t{2} << 20;

uint64_t expiryOf(uint64_t meta) { return (meta >> 1) & kMaxExpiry; }
bool isDone(uint64_t meta) { return (meta & 1) != 0; }

uint64_t expiryAt(uint64_t now, std::chrono::milliseconds ttl) {
  const auto ttl_ms = static_cast<uint64_t>(std::max<int64_t>(0, ttl.count()));
  return std::min(now + std::min(ttl_ms, kMaxExpiry), kMaxExpiry);
}

uint64_t pack(uint64_t tag, uint64_t expires, bool done) {
  return (tag << kTagShift) | (expires << 1) | (done ? 1 : 0);
}

}  // namespace

// A private anonymous mapping: zero pages without a memset (which would fault every page in
// before the first insert), given back whole on free. Arrays of 2 MiB and more are aligned to
// 2 MiB and advised onto huge pages, which the kernel grants when its THP mode is `always` or
// `madvise` (the default of Debian's kernels); otherwise they stay on 4 KiB pages and work the
// same. Lookups gain nothing measurable (each is a cache miss either way); growth does.
MemoryTable::SlotArray::SlotArray(size_t count) {
  const size_t bytes = count * sizeof(Slot);
  const bool huge = bytes >= kHugePage;
  // Room to align the start to a huge page; the unaligned head and tail go back at once.
  const size_t mapped = huge ? bytes + kHugePage : bytes;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  auto* start = static_cast<char*>(raw);
  if (huge) {
    const auto address = reinterpret_cast<uintptr_t>(start);
    const size_t head = ((address + kHugePage - 1) & ~(kHugePage - 1)) - address;
    if (head > 0) munmap(start, head);
    const size_t tail = mapped - head - bytes;
    if (tail > 0) munmap(start + head + bytes, tail);
    start += head;
    // Advice only: refused (THP `never`, old kernel), the table works on small pages.
    madvise(start, bytes, MADV_HUGEPAGE);
  }
  slots_ = reinterpret_cast<Slot*>(start);
  bytes_ = bytes;
}

MemoryTable::SlotArray& MemoryTable::SlotArray::operator=(SlotArray&& other) noexcept {
  if (this != &other) {
    if (slots_ != nullptr) munmap(slots_, bytes_);
    slots_ = std::exchange(other.slots_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

MemoryTable::SlotArray::~SlotArray() {
  if (slots_ != nullptr) munmap(slots_, bytes_);
}

// CLOCK_MONOTONIC_COARSE counts from the same point as CLOCK_MONOTONIC, steady_clock's clock.
std::chrono::steady_clock::time_point MemoryTable::coarseNow() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return std::chrono::steady_clock::time_point(std::chrono::seconds(now.tv_sec) +
                                               std::chrono::nanoseconds(now.tv_nsec));
}

MemoryTable::MemoryTable(uint64_t max_entries, Clock clock)
    : max_entries_(std::clamp<uint64_t>(max_entries, 1, kMaxEntriesCap)),
      clock_(std::move(clock)),
      epoch_(clock_()),
      // The smallest power of two that max_entries fills to at most 3/4.
      max_capacity_(std::bit_ceil(std::max<uint64_t>(2, (max_entries_ * 4 + 2) / 3))),
      capacity_(std::min(max_capacity_, kInitialCapacity)),
      slots_(capacity_) {}

ReserveResult MemoryTable::reserve(std::string_view id, std::chrono::milliseconds reservation_ttl) {
  const uint64_t now = nowMs();
  sweep(now);
  const Hash128 hash = hash128(id);
  const uint64_t tag = hash.low >> kTagShift;
  const size_t i = find(hash.high, tag);
  if (i != capacity_ && expiryOf(slots_[i].meta) > now) {
    return isDone(slots_[i].meta) ? ReserveResult::Done : ReserveResult::InProgress;
  }
  store(i, hash.high, pack(tag, expiryAt(now, reservation_ttl), false), now);
  return ReserveResult::New;
}

void MemoryTable::confirm(std::string_view id, std::chrono::milliseconds ttl) {
  const uint64_t now = nowMs();
  sweep(now);
  const Hash128 hash = hash128(id);
  const uint64_t tag = hash.low >> kTagShift;
  store(find(hash.high, tag), hash.high, pack(tag, expiryAt(now, ttl), true), now);
}

void MemoryTable::release(std::string_view id) {
  const Hash128 hash = hash128(id);
  const size_t i = find(hash.high, hash.low >> kTagShift);
  if (i != capacity_) erase(i);
}

// From 1, so that an expiry is never 0, which marks a free slot.
uint64_t MemoryTable::nowMs() const {
  const auto elapsed = clock_() - epoch_;
  if (elapsed.count() <= 0) return 1;
  return 1 + static_cast<uint64_t>(
                 std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
}

size_t MemoryTable::find(uint64_t key, uint64_t tag) const {
  const size_t mask = capacity_ - 1;
  // Ends: at most 3/4 of the slots are used.
  for (size_t i = key & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.meta == 0) return capacity_;
    if (slot.key == key && (slot.meta >> kTagShift) == tag) return i;
  }
}

void MemoryTable::store(size_t index, uint64_t key, uint64_t meta, uint64_t now) {
  if (index != capacity_) {
    slots_[index].meta = meta;
    return;
  }
  if (used_ >= max_entries_) makeRoom(now);
  if ((used_ + 1) * 4 > capacity_ * 3 && capacity_ < max_capacity_) grow(now);
  insert(key, meta);
}

void MemoryTable::insert(uint64_t key, uint64_t meta) {
  const size_t mask = capacity_ - 1;
  size_t i = key & mask;
  while (slots_[i].meta != 0) i = (i + 1) & mask;
  slots_[i] = Slot{key, meta};
  ++used_;
}

// Backward-shift deletion: the slots after the hole that may move closer to their home slot
// do, so that a lookup can stop at the first free slot, with no tombstones to skip or purge.
void MemoryTable::erase(size_t index) {
  const size_t mask = capacity_ - 1;
  size_t hole = index;
  for (size_t j = (index + 1) & mask; slots_[j].meta != 0; j = (j + 1) & mask) {
    const size_t home = slots_[j].key & mask;
    // Slot j stays if its home lies cyclically in (hole, j]: moving it would put it before its
    // home, where a lookup never looks.
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    slots_[hole] = slots_[j];
    hole = j;
  }
  slots_[hole] = Slot{};
  --used_;
}

void MemoryTable::sweep(uint64_t now) {
  const size_t mask = capacity_ - 1;
  for (int visited = 0; visited < kSweepSlots; ++visited) {
    const uint64_t meta = slots_[hand_].meta;
    if (meta != 0 && expiryOf(meta) <= now) {
      erase(hand_);  // the hand stays: a later slot may have shifted into this one
    } else {
      hand_ = (hand_ + 1) & mask;
    }
  }
}

void MemoryTable::makeRoom(uint64_t now) {
  const size_t mask = capacity_ - 1;
  size_t victim = capacity_;
  uint64_t earliest = std::numeric_limits<uint64_t>::max();
  // Several short runs from random places, not one long run: evictions leave the region they
  // sampled with young ids only, so that one run's ids are alike in age (measured: with one
  // run of 16, 3% of the newest half of the ids were evicted; with 4 runs of 4, none).
  for (int run = 0; run < kSampleRuns; ++run) {
    // xorshift64: cheap, no allocation or syscall.
    random_ ^= random_ << 13;
    random_ ^= random_ >> 7;
    random_ ^= random_ << 17;
    int sampled = 0;
    // Full means at max capacity, with over 3/8 of the slots used: each run is short.
    for (size_t i = random_ & mask, scanned = 0; scanned < capacity_ && sampled < kRunSlots;
         i = (i + 1) & mask, ++scanned) {
      const uint64_t meta = slots_[i].meta;
      if (meta == 0) continue;
      ++sampled;
      if (expiryOf(meta) < earliest) {
        earliest = expiryOf(meta);
        victim = i;
      }
    }
  }
  if (earliest > now) ++evicted_;
  erase(victim);
}

void MemoryTable::grow(uint64_t now) {
  SlotArray old = std::exchange(slots_, SlotArray(capacity_ * 2));
  const size_t old_capacity = std::exchange(capacity_, capacity_ * 2);
  used_ = 0;
  hand_ = 0;
  for (size_t i = 0; i < old_capacity; ++i) {
    // Expired ids are not carried over: the rehash is a full sweep for free.
    if (old[i].meta != 0 && expiryOf(old[i].meta) > now) insert(old[i].key, old[i].meta);
  }
}

namespace {
class MemorySession final : public Session {
 public:
  MemorySession(std::shared_ptr<MemoryTable> table, Ttls ttls)
      : table_(std::move(table)), ttls_(ttls) {}
  void reserve(std::string_view id, std::string_view, ReserveDone done) override {
    done(ReserveReply{table_->reserve(id, ttls_.reservation), {}});
  }
  void confirm(std::string_view id, ConfirmDone done) override {
    table_->confirm(id, ttls_.done);
    done({});
  }
  void release(std::string_view id, std::string_view) override { table_->release(id); }
  // Answers inside the call: no answer can be lost, so no owner is needed to find it again.
  bool usesOwner() const override { return false; }

 private:
  std::shared_ptr<MemoryTable> table_;
  Ttls ttls_;
};
}  // namespace

MemoryStore::MemoryStore(std::string name, uint64_t max_entries, Ttls ttls)
    : name_(std::move(name)), max_entries_(max_entries), ttls_(ttls) {}

std::unique_ptr<Session> MemoryStore::open(boost::asio::io_context&, const std::string& ns) {
  std::lock_guard lock(mutex_);
  std::shared_ptr<MemoryTable>& table = tables_[ns];
  if (!table) table = std::make_shared<MemoryTable>(max_entries_);
  return std::make_unique<MemorySession>(table, ttls_);
}

}  // namespace kpipe::dedup
