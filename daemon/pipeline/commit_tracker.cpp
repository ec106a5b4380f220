#include "daemon/pipeline/commit_tracker.h"

#include <algorithm>

namespace kpipe::pipeline {

void CommitTracker::begin(int64_t offset, int64_t timestamp_ms) {
  if (slots_.empty()) position_ = offset;
  slots_.push_back({offset, timestamp_ms, false});
  ++pending_;
}

bool CommitTracker::complete(int64_t offset) {
  // Offsets are nearly always contiguous (gaps come from compaction and transaction markers):
  // the slot is then at offset - front, found without a binary search's cache misses over
  // thousands of slots. Otherwise, or when that slot holds another offset, the search decides.
  auto it = slots_.end();
  if (!slots_.empty() && offset >= slots_.front().offset) {
    const auto distance = static_cast<uint64_t>(offset - slots_.front().offset);
    if (distance < slots_.size() && slots_[static_cast<size_t>(distance)].offset == offset) {
      it = slots_.begin() + static_cast<std::ptrdiff_t>(distance);
    }
  }
  if (it == slots_.end()) {
    it = std::lower_bound(slots_.begin(), slots_.end(), offset,
                          [](const Slot& s, int64_t o) { return s.offset < o; });
  }
  if (it == slots_.end() || it->offset != offset || it->done) return false;
  it->done = true;
  --pending_;
  if (it != slots_.begin()) return false;
  int64_t last_done = kUnknown;
  while (!slots_.empty() && slots_.front().done) {
    last_done = slots_.front().offset;
    last_done_timestamp_ = slots_.front().timestamp_ms;
    slots_.pop_front();
  }
  position_ = slots_.empty() ? last_done + 1 : slots_.front().offset;
  return true;
}

void CommitTracker::observeEnd(int64_t next_offset) {
  if (slots_.empty() && next_offset > position_) position_ = next_offset;
}

}  // namespace kpipe::pipeline
