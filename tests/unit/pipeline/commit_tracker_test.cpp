#include "daemon/pipeline/commit_tracker.h"

#include <gtest/gtest.h>

namespace kpipe::pipeline {
namespace {

TEST(CommitTrackerTest, UnknownBeforeAnyMessage) {
  CommitTracker tracker;
  EXPECT_EQ(tracker.commitPosition(), CommitTracker::kUnknown);
}

TEST(CommitTrackerTest, PositionIsFirstPendingOffset) {
  // given
  CommitTracker tracker;
  tracker.begin(10);
  tracker.begin(11);
  // then: nothing done yet, the commit position is the first in-flight message
  EXPECT_EQ(tracker.commitPosition(), 10);
  EXPECT_EQ(tracker.inflight(), 2u);
}

TEST(CommitTrackerTest, DoesNotAdvancePastGap) {
  // given
  CommitTracker tracker;
  for (int64_t o = 0; o < 4; ++o) tracker.begin(o);
  // when: later messages finish first
  EXPECT_FALSE(tracker.complete(2));
  EXPECT_FALSE(tracker.complete(3));
  // then
  EXPECT_EQ(tracker.commitPosition(), 0);
  // when: the gap closes
  EXPECT_TRUE(tracker.complete(0));
  EXPECT_EQ(tracker.commitPosition(), 1);
  EXPECT_TRUE(tracker.complete(1));
  EXPECT_EQ(tracker.commitPosition(), 4);
  EXPECT_EQ(tracker.inflight(), 0u);
}

TEST(CommitTrackerTest, NonContiguousOffsets) {
  // given: compaction left holes in the offsets
  CommitTracker tracker;
  tracker.begin(5);
  tracker.begin(9);
  // when
  tracker.complete(5);
  // then: the next position is the next existing message, not 6
  EXPECT_EQ(tracker.commitPosition(), 9);
  tracker.complete(9);
  EXPECT_EQ(tracker.commitPosition(), 10);
}

TEST(CommitTrackerTest, IgnoresUnknownAndRepeatedCompletions) {
  CommitTracker tracker;
  tracker.begin(1);
  EXPECT_FALSE(tracker.complete(7));
  EXPECT_TRUE(tracker.complete(1));
  EXPECT_FALSE(tracker.complete(1));
  EXPECT_EQ(tracker.commitPosition(), 2);
}

TEST(CommitTrackerTest, ObserveEndOnlyWhenIdle) {
  CommitTracker tracker;
  tracker.observeEnd(42);
  EXPECT_EQ(tracker.commitPosition(), 42);
  tracker.begin(42);
  tracker.observeEnd(50);  // in flight: the end says nothing about what is done
  EXPECT_EQ(tracker.commitPosition(), 42);
}

}  // namespace
}  // namespace kpipe::pipeline

namespace kpipe::pipeline {
namespace {

TEST(CommitTrackerTimestampTest, OldestPendingIsTheOneThePositionWaitsFor) {
  CommitTracker tracker;
  EXPECT_EQ(tracker.oldestPendingTimestamp(), CommitTracker::kUnknown);
  tracker.begin(10, 1000);
  tracker.begin(11, 2000);
  tracker.begin(12, 3000);
  EXPECT_EQ(tracker.oldestPendingTimestamp(), 1000);
  tracker.complete(11);  // out of order: 10 still holds the position
  EXPECT_EQ(tracker.oldestPendingTimestamp(), 1000);
  tracker.complete(10);
  EXPECT_EQ(tracker.oldestPendingTimestamp(), 3000);
  tracker.complete(12);  // none pending: the last one done
  EXPECT_EQ(tracker.oldestPendingTimestamp(), 3000);
}

}  // namespace
}  // namespace kpipe::pipeline
