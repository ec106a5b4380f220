#pragma once
// In-process dedup: MemoryTable remembers ids in a bounded table (max entries and TTL);
// MemoryStore hands each pipeline a session with a table of its own. Not durable: a restart
// forgets every id (committed offsets, not this store, keep a restart from reprocessing).

#include "daemon/dedup/store.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace kpipe::dedup {

// A hash table of id fingerprints: 16 bytes per slot, at most 3/4 of the slots used, so 21 to
// 43 bytes per id (27 at 10M ids) including the table, whatever the ids' length.
//
// Fingerprints: each id is kept as 88 bits of its 128-bit hash (hash.h). A new id is taken for
// a remembered one (answered Done or InProgress) only if some id in the table has the same 88
// bits: with n ids held, n / 2^88 per reserve, 3e-20 at 10M ids, i.e. once in 3e19 reserves
// (a million years at a million reserves a second).
//
// Time: expiries are milliseconds since the table was built, in 39 bits (17 years; longer
// TTLs are cut to that). An expired id counts as absent at once; its slot is freed later by a
// sweep hand that visits a few slots on each reserve and confirm, or reused when the id comes
// back.
//
// At the bound: when max_entries slots are held (live or expired but not yet swept), a new id
// first frees one: of 16 held slots sampled (4 runs of 4 neighbours from random places), the
// one that expires earliest goes (an expired one if the sample has one; otherwise a live id,
// counted by evictedForTest()). A confirmed id's expiry is its confirm time + ttl, so that is
// an approximately oldest id, as with Redis's approximated LRU, not the oldest: measured at
// 20 x max_entries fresh ids, the newest 3/4 x max_entries all stay, about 75% of the next
// quarter and 6% of the quarter after. With at most 4 ids held, it is exactly the one that
// expires first. Evicting a live id forgets it: a later copy of it is processed again
// (at-least-once), never the other way round.
//
// Memory: the slot array starts small and doubles (rehashing, which drops expired ids) up to
// the capacity that max_entries needs, on huge pages once it is 2 MiB or more; growing from 8M
// to 16M slots takes a pause of the order of 100 ms on the session's thread. Operations are
// O(1) and allocate nothing otherwise.
//
// Not thread-safe: one per pipeline session, used on that pipeline's io_context thread.
class MemoryTable {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // The default clock is CLOCK_MONOTONIC_COARSE (a few ms of resolution, which TTLs of seconds
  // to days do not notice): it reads a word the kernel updates instead of the time-stamp
  // counter, about 4x cheaper on a VM, and every reserve and confirm reads it.
  explicit MemoryTable(uint64_t max_entries, Clock clock = coarseNow);
  static std::chrono::steady_clock::time_point coarseNow();

  ReserveResult reserve(std::string_view id, std::chrono::milliseconds reservation_ttl);
  void confirm(std::string_view id, std::chrono::milliseconds ttl);
  void release(std::string_view id);

  // Slots held: live ids and expired ones not yet swept. At most max_entries.
  size_t size() const { return used_; }
  // Bytes of the slot array (mapped directly, so malloc's statistics do not count them).
  size_t bytes() const { return capacity_ * sizeof(Slot); }
  uint64_t evictedForTest() const { return evicted_; }

 private:
  // `key`: 64 bits of the hash, whose low bits also choose the home slot. `meta`: 24 more bits
  // of the hash, the expiry (39 bits, never 0 in a used slot) and the done bit. meta == 0: free.
  struct Slot {
    uint64_t key = 0;
    uint64_t meta = 0;
  };
  static_assert(sizeof(Slot) == 16);

  // The slot array: zeroed pages straight from mmap, on transparent huge pages from 2 MiB up.
  // Each growth writes every page of a new array once: on 4 KiB pages that is a page fault per
  // 256 slots, which was half the time of filling a table (dedup_bench, docs/BENCHMARKS.md).
  class SlotArray {
   public:
    explicit SlotArray(size_t count);
    SlotArray(SlotArray&& other) noexcept
        : slots_(std::exchange(other.slots_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
    SlotArray& operator=(SlotArray&& other) noexcept;
    SlotArray(const SlotArray&) = delete;
    SlotArray& operator=(const SlotArray&) = delete;
    ~SlotArray();
    Slot& operator[](size_t i) { return slots_[i]; }
    const Slot& operator[](size_t i) const { return slots_[i]; }

   private:
    Slot* slots_ = nullptr;
    size_t bytes_ = 0;  // of the mapping
  };

  uint64_t nowMs() const;
  size_t find(uint64_t key, uint64_t tag) const;  // capacity_ when absent
  // Sets the slot `index` (found by find), or inserts when the id is absent.
  void store(size_t index, uint64_t key, uint64_t meta, uint64_t now);
  void insert(uint64_t key, uint64_t meta);
  void erase(size_t index);
  void sweep(uint64_t now);
  void makeRoom(uint64_t now);
  void grow(uint64_t now);

  uint64_t max_entries_;
  Clock clock_;
  std::chrono::steady_clock::time_point epoch_;
  size_t max_capacity_;
  size_t capacity_;  // a power of two
  SlotArray slots_;
  size_t used_ = 0;
  size_t hand_ = 0;  // the sweep's next slot
  uint64_t random_ = 0x9e3779b97f4a7c15ULL;
  uint64_t evicted_ = 0;
};

// Answers inside each call: nothing to wait for. Each namespace (pipeline) has a table of its
// own, so a named memory store shared by two pipelines still keeps their ids apart, and a
// pipeline restarted by a reload finds the ids it saw before. One session per namespace at a
// time: the table has no lock.
class MemoryStore final : public Store {
 public:
  MemoryStore(std::string name, uint64_t max_entries, Ttls ttls);
  std::unique_ptr<Session> open(boost::asio::io_context& io, const std::string& ns) override;
  const std::string& name() const override { return name_; }

 private:
  std::string name_;
  uint64_t max_entries_;
  Ttls ttls_;
  std::mutex mutex_;  // guards tables_ (sessions are opened from any thread)
  std::map<std::string, std::shared_ptr<MemoryTable>> tables_;
};

}  // namespace kpipe::dedup
