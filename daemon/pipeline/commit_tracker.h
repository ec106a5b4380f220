#pragma once
// Tracks one input partition's in-flight offsets and says how far it is safe to commit:
// the lowest offset not yet completed (or one past the last completed when none is pending).
// Completions may arrive in any order; the commit position never passes unfinished work.
//
// Not thread-safe: used on the pipeline's io_context thread.

#include <cstddef>
#include <cstdint>
#include <deque>

namespace kpipe::pipeline {

class CommitTracker {
 public:
  static constexpr int64_t kUnknown = -1;

  // Registers `offset` as in flight. Offsets of one partition arrive in increasing order
  // (not necessarily contiguous: compaction and transaction markers leave gaps).
  // `timestamp_ms` is the message's timestamp, for the lag in seconds.
  void begin(int64_t offset, int64_t timestamp_ms = kUnknown);
  // Marks `offset` done. Returns true when the commit position moved. Unknown offsets (from
  // an earlier assignment) are ignored.
  bool complete(int64_t offset);
  // The offset to commit (the next one to consume), or kUnknown before any message.
  int64_t commitPosition() const { return position_; }
  // Known end of the partition with nothing in flight (e.g. from a partition EOF event).
  void observeEnd(int64_t next_offset);
  size_t inflight() const { return pending_; }
  // Timestamp of the oldest message not done yet (the one the commit position waits for), or
  // of the last one done when none is pending; kUnknown before any.
  int64_t oldestPendingTimestamp() const {
    return slots_.empty() ? last_done_timestamp_ : slots_.front().timestamp_ms;
  }

 private:
  struct Slot {
    int64_t offset;
    int64_t timestamp_ms;
    bool done;
  };
  std::deque<Slot> slots_;
  int64_t position_ = kUnknown;
  size_t pending_ = 0;
  int64_t last_done_timestamp_ = kUnknown;
};

}  // namespace kpipe::pipeline
