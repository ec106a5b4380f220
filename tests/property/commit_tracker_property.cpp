// Property: for any arrival of offsets and any completion order, the commit position is
// exactly the first unfinished offset (never past one), and reaches the end when all finish.

#include "daemon/pipeline/commit_tracker.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

namespace kpipe::pipeline {
namespace {

RC_GTEST_PROP(CommitTrackerProperty, NeverPassesUnfinishedWork, ()) {
  // given: increasing offsets with random gaps
  const auto gaps = *rc::gen::container<std::vector<int>>(rc::gen::inRange(1, 4));
  RC_PRE(!gaps.empty());
  std::vector<int64_t> offsets;
  int64_t next = *rc::gen::inRange<int64_t>(0, 1000);
  for (int gap : gaps) {
    offsets.push_back(next);
    next += gap;
  }
  // and a random completion order
  const auto ranks =
      *rc::gen::container<std::vector<int>>(offsets.size(), rc::gen::arbitrary<int>());
  std::vector<size_t> order(offsets.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ranks[a] < ranks[b]; });

  CommitTracker tracker;
  for (int64_t o : offsets) tracker.begin(o);
  std::set<int64_t> unfinished(offsets.begin(), offsets.end());
  for (size_t i : order) {
    tracker.complete(offsets[i]);
    unfinished.erase(offsets[i]);
    // then: never past the first unfinished message; exactly at it
    if (!unfinished.empty()) {
      RC_ASSERT(tracker.commitPosition() == *unfinished.begin());
    }
    RC_ASSERT(tracker.inflight() == unfinished.size());
  }
  RC_ASSERT(tracker.commitPosition() == offsets.back() + 1);
}

RC_GTEST_PROP(CommitTrackerProperty, InterleavedArrivalAndCompletion, ()) {
  // Messages keep arriving while others complete, as they do in a running pipeline.
  const auto ops = *rc::gen::container<std::vector<bool>>(rc::gen::arbitrary<bool>());
  CommitTracker tracker;
  std::vector<int64_t> pending;
  int64_t next = 0;
  int64_t last_position = CommitTracker::kUnknown;
  for (bool arrive : ops) {
    if (arrive || pending.empty()) {
      tracker.begin(next);
      pending.push_back(next++);
    } else {
      size_t pick = *rc::gen::inRange<size_t>(0, pending.size());
      tracker.complete(pending[pick]);
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(pick));
    }
    int64_t position = tracker.commitPosition();
    int64_t first_pending =
        pending.empty() ? next : *std::min_element(pending.begin(), pending.end());
    RC_ASSERT(position == first_pending);
    RC_ASSERT(position >= last_position);  // monotonic
    last_position = position;
  }
}

}  // namespace
}  // namespace kpipe::pipeline
