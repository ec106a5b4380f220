#include "daemon/observe/consumer_status.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace kpipe::observe {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

const Clock::time_point kStart = Clock::time_point{} + std::chrono::hours(1);
Clock::time_point at(int second) { return kStart + seconds(second); }

struct Point {
  int64_t offset;
  int64_t high_watermark;
};

// Records one sample a second, the first at `first_second`, as the worker's lag timer does.
void feed(PartitionStatusWindow& window, std::initializer_list<Point> points,
          int first_second = 0) {
  int second = first_second;
  for (const Point& p : points) {
    window.record({at(second++), p.offset, p.high_watermark, p.high_watermark - p.offset});
  }
}

// `count` samples a second from `first_second` at the same position and high watermark.
void feedSame(PartitionStatusWindow& window, int count, Point p, int first_second = 0) {
  for (int i = 0; i < count; ++i) {
    window.record({at(first_second + i), p.offset, p.high_watermark, p.high_watermark - p.offset});
  }
}

TEST(ConsumerStatusTest, NamesAreTheMetricLabels) {
  EXPECT_STREQ(statusName(ConsumerStatus::Ok), "ok");
  EXPECT_STREQ(statusName(ConsumerStatus::Warn), "warn");
  EXPECT_STREQ(statusName(ConsumerStatus::Error), "error");
  EXPECT_STREQ(statusName(ConsumerStatus::Stop), "stop");
  EXPECT_STREQ(statusName(ConsumerStatus::Stall), "stall");
  EXPECT_STREQ(statusName(ConsumerStatus::Rewind), "rewind");
}

TEST(ConsumerStatusTest, ValuesAreBurrowsNumbers) {
  // core/protocol/evaluator.go: OK 1, WARN 2, ERR 3, STOP 4, STALL 5, REWIND 6
  int expected = 1;
  for (ConsumerStatus s : kConsumerStatuses) {
    EXPECT_EQ(static_cast<int>(s), expected++) << statusName(s);
  }
}

TEST(ConsumerStatusTest, WorstIsTheMostSevere) {
  EXPECT_EQ(worst({}), ConsumerStatus::Ok);
  // Every pair, both ways round: the later in severity order wins.
  for (std::size_t i = 0; i < kConsumerStatuses.size(); ++i) {
    for (std::size_t j = i; j < kConsumerStatuses.size(); ++j) {
      ConsumerStatus lo = kConsumerStatuses[i];
      ConsumerStatus hi = kConsumerStatuses[j];
      EXPECT_EQ(worst({lo, hi}), hi) << statusName(lo) << " " << statusName(hi);
      EXPECT_EQ(worst({hi, lo}), hi) << statusName(hi) << " " << statusName(lo);
    }
  }
  EXPECT_EQ(worst({ConsumerStatus::Ok, ConsumerStatus::Stall, ConsumerStatus::Warn,
                   ConsumerStatus::Stop}),
            ConsumerStatus::Stall);
}

TEST(ConsumerStatusTest, GroupStatusReportsPartitionFailuresAsError) {
  EXPECT_EQ(groupStatus({}), ConsumerStatus::Ok);
  EXPECT_EQ(groupStatus({ConsumerStatus::Ok, ConsumerStatus::Ok}), ConsumerStatus::Ok);
  EXPECT_EQ(groupStatus({ConsumerStatus::Ok, ConsumerStatus::Warn}), ConsumerStatus::Warn);
  EXPECT_EQ(groupStatus({ConsumerStatus::Warn, ConsumerStatus::Stop}), ConsumerStatus::Error);
  EXPECT_EQ(groupStatus({ConsumerStatus::Stall, ConsumerStatus::Ok}), ConsumerStatus::Error);
  EXPECT_EQ(groupStatus({ConsumerStatus::Rewind}), ConsumerStatus::Error);
}

TEST(PartitionStatusWindowTest, EmptyWindowIsOk) {
  PartitionStatusWindow window;
  EXPECT_EQ(window.evaluate(at(0)), ConsumerStatus::Ok);
  EXPECT_EQ(window.size(), 0u);
}

TEST(PartitionStatusWindowTest, JustAssignedPartitionIsOk) {
  // given: one sample, far behind (Burrow would call a single commit STALL, or STOP later)
  PartitionStatusWindow window;
  feed(window, {{100, 5000}});
  // then: nothing to compare yet, however long we wait
  EXPECT_EQ(window.evaluate(at(0)), ConsumerStatus::Ok);
  EXPECT_EQ(window.evaluate(at(3600)), ConsumerStatus::Ok);
}

TEST(PartitionStatusWindowTest, ZeroLagAnywhereInWindowIsOk) {
  // given: the lag grows from zero (Rule 1 alone makes it OK) ...
  PartitionStatusWindow caught_up;
  feed(caught_up, {{100, 100},
                   {110, 111},
                   {120, 122},
                   {130, 133},
                   {140, 144},
                   {150, 155},
                   {160, 166},
                   {170, 177},
                   {180, 188},
                   {190, 199}});
  EXPECT_EQ(caught_up.evaluate(at(9)), ConsumerStatus::Ok);
  // ... whereas the same growth from 1 is a slow consumer
  PartitionStatusWindow behind;
  feed(behind, {{100, 101},
                {110, 111},
                {120, 122},
                {130, 133},
                {140, 144},
                {150, 155},
                {160, 166},
                {170, 177},
                {180, 188},
                {190, 199}});
  EXPECT_EQ(behind.evaluate(at(9)), ConsumerStatus::Warn);

  // given: a position stuck since it was caught up: new messages, not a stall yet
  PartitionStatusWindow new_messages;
  feed(new_messages, {{100, 100}, {100, 101}, {100, 102}, {100, 103}, {100, 104}});
  EXPECT_EQ(new_messages.evaluate(at(4)), ConsumerStatus::Ok);
}

TEST(PartitionStatusWindowTest, SteadyProgressWithDecreasingLagIsOk) {
  // given: the consumer catches up 50 messages a second
  PartitionStatusWindow window;
  feed(window, {{1000, 2000},
                {1100, 2050},
                {1200, 2100},
                {1300, 2150},
                {1400, 2200},
                {1500, 2250},
                {1600, 2300},
                {1700, 2350},
                {1800, 2400},
                {1900, 2450}});
  // then
  EXPECT_EQ(window.evaluate(at(9)), ConsumerStatus::Ok);
  EXPECT_EQ(window.evaluate(at(10)), ConsumerStatus::Ok);
}

TEST(PartitionStatusWindowTest, AdvancingButLagNeverDecreasingIsWarn) {
  // given: the position moves, the lag holds then grows (equal counts as not decreasing)
  PartitionStatusWindow window;
  feed(window, {{100, 200},
                {110, 210},
                {120, 220},
                {130, 235},
                {140, 250},
                {150, 260},
                {160, 270},
                {170, 290},
                {180, 300},
                {190, 320}});
  // then
  EXPECT_EQ(window.evaluate(at(9)), ConsumerStatus::Warn);
}

TEST(PartitionStatusWindowTest, PositionUnchangedWithFixedLagIsStall) {
  // given: sampled every second, the position stuck with 50 messages behind it
  PartitionStatusWindow window;
  feedSame(window, 10, {100, 150});
  // then
  EXPECT_EQ(window.evaluate(at(9)), ConsumerStatus::Stall);
}

TEST(PartitionStatusWindowTest, PositionUnchangedWithGrowingLagIsStall) {
  // given: e.g. a message held by a blocking retry while the producers go on
  PartitionStatusWindow window;
  feed(window, {{100, 150},
                {100, 160},
                {100, 170},
                {100, 170},
                {100, 185},
                {100, 190},
                {100, 200},
                {100, 230},
                {100, 240},
                {100, 250}});
  // then
  EXPECT_EQ(window.evaluate(at(9)), ConsumerStatus::Stall);
}

TEST(PartitionStatusWindowTest, NoSampleForLongerThanWindowSpansWithLagIsStop) {
  // given: healthy progress over 9 s (samples at 0..9), then no sample any more
  PartitionStatusWindow window;
  feed(window, {{1000, 2000},
                {1100, 2050},
                {1200, 2100},
                {1300, 2150},
                {1400, 2200},
                {1500, 2250},
                {1600, 2300},
                {1700, 2350},
                {1800, 2400},
                {1900, 2450}});
  // then: silent for as long as the window spans is still fine, longer is a stop
  EXPECT_EQ(window.evaluate(at(9 + 9)), ConsumerStatus::Ok);
  EXPECT_EQ(window.evaluate(at(9 + 10)), ConsumerStatus::Stop);
  EXPECT_EQ(window.evaluate(at(3600)), ConsumerStatus::Stop);
}

TEST(PartitionStatusWindowTest, StopIsHeldBackWhenCaughtUpRecently) {
  // given: caught up, then 5 new messages in the last sample, then no sample any more
  PartitionStatusWindow window;
  feedSame(window, 9, {100, 100});
  feed(window, {{100, 105}}, 9);
  // then: a recent high watermark is at the position (checkIfRecentLagZero): not a stop
  EXPECT_EQ(window.evaluate(at(3600)), ConsumerStatus::Ok);
}

TEST(PartitionStatusWindowTest, StopOutranksAnOldZeroLag) {
  // given: samples merged into 3 s slots, so the window spans 9 s and keeps the lag of 0 from
  // second 2 while the recent high watermarks (the last 4 samples) are all ahead of the position
  PartitionStatusWindow window({.intervals = 4, .min_distance = seconds(3)});
  feed(window, {{90, 95},
                {95, 98},
                {100, 100},  // slot 0: lag 0
                {101, 120},
                {102, 121},
                {103, 122},  // slot 3
                {104, 123},
                {105, 124},
                {106, 125},  // slot 6
                {107, 126},
                {108, 127},
                {109, 128}});  // slot 9
  ASSERT_EQ(window.size(), 4u);
  // then: the stop is checked before Rule 1, as in Burrow
  EXPECT_EQ(window.evaluate(at(9 + 9)), ConsumerStatus::Ok);
  EXPECT_EQ(window.evaluate(at(9 + 10)), ConsumerStatus::Stop);
}

TEST(PartitionStatusWindowTest, PositionWentBackwardsIsRewind) {
  // given: the position jumps back once (an offset reset); the lag never decreases, so this
  // would otherwise be a warning
  PartitionStatusWindow window;
  feed(window, {{100, 200},
                {110, 210},
                {120, 220},
                {50, 220},
                {60, 230},
                {70, 240},
                {80, 250},
                {90, 260},
                {100, 270},
                {110, 280}});
  // then
  EXPECT_EQ(window.evaluate(at(9)), ConsumerStatus::Rewind);
}

TEST(PartitionStatusWindowTest, IdleCaughtUpPartitionIsOk) {
  // given: caught up, nothing produced for 100 s, sampled every second
  PartitionStatusWindow window;
  feedSame(window, 100, {500, 500});
  // then: OK now, and still OK an hour after the samples stopped
  EXPECT_EQ(window.evaluate(at(99)), ConsumerStatus::Ok);
  EXPECT_EQ(window.evaluate(at(99 + 3600)), ConsumerStatus::Ok);

  // whereas the same with 10 messages waiting is a stall, then a stop
  PartitionStatusWindow behind;
  feedSame(behind, 100, {500, 510});
  EXPECT_EQ(behind.evaluate(at(99)), ConsumerStatus::Stall);
  EXPECT_EQ(behind.evaluate(at(99 + 3600)), ConsumerStatus::Stop);
}

TEST(PartitionStatusWindowTest, NegativeLagCountsAsZero) {
  // given: a high watermark read before the commit that passed it
  PartitionStatusWindow window;
  feedSame(window, 10, {100, 97});
  // then: caught up, as in Burrow's addConsumerOffset
  EXPECT_EQ(window.evaluate(at(9)), ConsumerStatus::Ok);
  EXPECT_EQ(window.evaluate(at(3600)), ConsumerStatus::Ok);
}

TEST(PartitionStatusWindowTest, WindowKeepsTheLastIntervalsSamples) {
  PartitionStatusWindow window({.intervals = 5});
  // given: stuck for 5 samples
  feedSame(window, 5, {100, 200});
  EXPECT_EQ(window.evaluate(at(4)), ConsumerStatus::Stall);
  // when: one step forward
  feed(window, {{101, 200}}, 5);
  // then: it is in the window
  EXPECT_EQ(window.evaluate(at(5)), ConsumerStatus::Ok);
  // when: stuck again for 4 samples, which pushes the step's predecessor out
  feedSame(window, 4, {101, 200}, 6);
  // then: the window holds the last 5 samples only, all at 101
  EXPECT_EQ(window.size(), 5u);
  EXPECT_EQ(window.evaluate(at(9)), ConsumerStatus::Stall);
}

TEST(PartitionStatusWindowTest, RewindLeavesTheWindow) {
  PartitionStatusWindow window({.intervals = 3});
  // given
  feed(window, {{100, 200}, {90, 200}});
  EXPECT_EQ(window.evaluate(at(1)), ConsumerStatus::Rewind);
  feed(window, {{95, 200}}, 2);
  EXPECT_EQ(window.evaluate(at(2)), ConsumerStatus::Rewind);
  // when: the sample before the rewind is evicted
  feed(window, {{96, 200}}, 3);
  // then
  EXPECT_EQ(window.size(), 3u);
  EXPECT_EQ(window.evaluate(at(3)), ConsumerStatus::Ok);
}

TEST(PartitionStatusWindowTest, MinimumCompleteHoldsJudgementUntilTheWindowFills) {
  PartitionStatusWindow window({.intervals = 10, .minimum_complete = 1.0});
  // given: stuck, 9 of 10 samples
  feedSame(window, 9, {100, 200});
  EXPECT_EQ(window.evaluate(at(8)), ConsumerStatus::Ok);
  // when: the 10th
  feedSame(window, 1, {100, 200}, 9);
  // then
  EXPECT_EQ(window.evaluate(at(9)), ConsumerStatus::Stall);
}

TEST(PartitionStatusWindowTest, SamplesCloserThanMinDistanceMergeKeepingTheOlderTime) {
  // given: 12 samples a second apart, progressing, merged into slots at 0, 3, 6 and 9 s
  PartitionStatusWindow window({.intervals = 4, .min_distance = seconds(3)});
  for (int i = 0; i < 12; ++i) feed(window, {{100 + 10 * i, 200 + 5 * i}}, i);
  // then: 4 slots (a merge that took the new time would leave 1), spanning 9 s
  EXPECT_EQ(window.size(), 4u);
  EXPECT_EQ(window.evaluate(at(9 + 9)), ConsumerStatus::Ok);
  EXPECT_EQ(window.evaluate(at(9 + 10)), ConsumerStatus::Stop);
}

TEST(PartitionStatusWindowTest, MergedSampleTakesTheNewestPositionAndLag) {
  PartitionStatusWindow window({.intervals = 4, .min_distance = seconds(3)});
  // given: stuck with lag in slots 0 and 3
  feedSame(window, 4, {100, 110});
  ASSERT_EQ(window.size(), 2u);
  EXPECT_EQ(window.evaluate(at(3)), ConsumerStatus::Stall);
  // when: a sample a second later (merged into slot 3) has caught up
  feed(window, {{110, 110}}, 4);
  // then
  EXPECT_EQ(window.size(), 2u);
  EXPECT_EQ(window.evaluate(at(4)), ConsumerStatus::Ok);
}

}  // namespace
}  // namespace kpipe::observe
