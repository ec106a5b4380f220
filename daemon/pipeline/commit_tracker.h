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
  void begin(int64_t offset);
  // Marks `offset` done. Returns true when the commit position moved. Unknown offsets (from
  // an earlier assignment) are ignored.
  bool complete(int64_t offset);
  // The offset to commit (the next one to consume), or kUnknown before any message.
  int64_t commitPosition() const { return position_; }
  // Known end of the partition with nothing in flight (e.g. from a partition EOF event).
  void observeEnd(int64_t next_offset);
  size_t inflight() const { return pending_; }

 private:
  struct Slot {
    int64_t offset;
    bool done;
  };
  std::deque<Slot> slots_;
  int64_t position_ = kUnknown;
  size_t pending_ = 0;
};

}  // namespace kpipe::pipeline
