#include "daemon/pipeline/key_scheduler.h"

#include "daemon/pipeline/commit_tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace kpipe::pipeline {
namespace {

using config::Ordering;
using Started = std::vector<std::string>;

constexpr uint64_t kA = 1;
constexpr uint64_t kB = 2;
constexpr uint64_t kC = 3;

// What finish() starts, as a list.
Started finish(KeyScheduler<std::string>& s, uint64_t key) {
  Started started;
  s.finish(key, started);
  return started;
}

TEST(KeySchedulerTest, SameKeyWaitsOtherKeysWaitForASlot) {
  // given: concurrency 2, keys A A B C
  KeyScheduler<std::string> s(Ordering::Key, 2);
  // when / then: A1 and B1 start, A2 waits for A1, C1 waits for a slot
  EXPECT_TRUE(s.submit("A1", kA));
  EXPECT_FALSE(s.submit("A2", kA));
  EXPECT_TRUE(s.submit("B1", kB));
  EXPECT_FALSE(s.submit("C1", kC));
  EXPECT_EQ(s.running(), 2u);
  EXPECT_EQ(s.waiting(), 2u);
  EXPECT_EQ(s.pending(), 4u);
  // B1 done: its slot goes to C1 (A2 still waits for A1)
  EXPECT_EQ(finish(s, kB), Started{"C1"});
  // A1 done: A2 may go now
  EXPECT_EQ(finish(s, kA), Started{"A2"});
  EXPECT_EQ(s.running(), 2u);
  EXPECT_EQ(s.waiting(), 0u);
  EXPECT_EQ(finish(s, kC), Started{});
  EXPECT_EQ(finish(s, kA), Started{});
  EXPECT_EQ(s.pending(), 0u);
}

TEST(KeySchedulerTest, KeyWaitsForItsRunningMessageEvenWithFreeSlots) {
  // given: plenty of slots, but A1 runs
  KeyScheduler<std::string> s(Ordering::Key, 4);
  EXPECT_TRUE(s.submit("A1", kA));
  EXPECT_FALSE(s.submit("A2", kA));
  EXPECT_FALSE(s.submit("A3", kA));
  EXPECT_TRUE(s.submit("B1", kB));
  EXPECT_EQ(s.running(), 2u);
  EXPECT_EQ(s.waiting(), 2u);
  // then: A's messages follow each other, in offset order
  EXPECT_EQ(finish(s, kB), Started{});
  EXPECT_EQ(finish(s, kA), Started{"A2"});
  EXPECT_EQ(finish(s, kA), Started{"A3"});
  EXPECT_EQ(finish(s, kA), Started{});
  EXPECT_EQ(s.pending(), 0u);
}

TEST(KeySchedulerTest, FreedSlotGoesToTheOldestWaitingMessage) {
  // given: concurrency 1; A1 runs, B1 arrived before A2
  KeyScheduler<std::string> s(Ordering::Key, 1);
  EXPECT_TRUE(s.submit("A1", kA));
  EXPECT_FALSE(s.submit("B1", kB));
  EXPECT_FALSE(s.submit("A2", kA));
  // when A1 finishes, then B1 (older) starts before A's next message
  EXPECT_EQ(finish(s, kA), Started{"B1"});
  EXPECT_EQ(finish(s, kB), Started{"A2"});
  EXPECT_EQ(finish(s, kA), Started{});
}

TEST(KeySchedulerTest, FinishedKeysNextMessageGoesFirstWhenItIsOldest) {
  // given: concurrency 1; A2 arrived before B1
  KeyScheduler<std::string> s(Ordering::Key, 1);
  EXPECT_TRUE(s.submit("A1", kA));
  EXPECT_FALSE(s.submit("A2", kA));
  EXPECT_FALSE(s.submit("B1", kB));
  // then
  EXPECT_EQ(finish(s, kA), Started{"A2"});
  EXPECT_EQ(finish(s, kA), Started{"B1"});
  EXPECT_EQ(finish(s, kB), Started{});
}

TEST(KeySchedulerTest, ReadyKeysStartInOrderOfTheirOldestMessage) {
  // given: concurrency 1; C1, A2, B1 wait (in that order of arrival) behind A1
  KeyScheduler<std::string> s(Ordering::Key, 1);
  EXPECT_TRUE(s.submit("A1", kA));
  EXPECT_FALSE(s.submit("C1", kC));
  EXPECT_FALSE(s.submit("A2", kA));
  EXPECT_FALSE(s.submit("B1", kB));
  EXPECT_FALSE(s.submit("C2", kC));
  // then: each freed slot goes to the oldest message whose key is free
  EXPECT_EQ(finish(s, kA), Started{"C1"});
  EXPECT_EQ(finish(s, kC), Started{"A2"});
  EXPECT_EQ(finish(s, kA), Started{"B1"});
  EXPECT_EQ(finish(s, kB), Started{"C2"});
  EXPECT_EQ(finish(s, kC), Started{});
}

TEST(KeySchedulerTest, ExtremeKeyValuesAreOrdinaryKeys) {
  KeyScheduler<std::string> s(Ordering::Key, 2);
  EXPECT_TRUE(s.submit("zero1", 0));
  EXPECT_TRUE(s.submit("max1", UINT64_MAX));
  EXPECT_FALSE(s.submit("zero2", 0));
  EXPECT_FALSE(s.submit("max2", UINT64_MAX));
  EXPECT_EQ(finish(s, UINT64_MAX), Started{"max2"});
  EXPECT_EQ(finish(s, 0), Started{"zero2"});
  EXPECT_EQ(finish(s, 0), Started{});
  EXPECT_EQ(finish(s, UINT64_MAX), Started{});
}

TEST(KeySchedulerTest, ZeroConcurrencyMeansOne) {
  KeyScheduler<std::string> s(Ordering::Key, 0);
  EXPECT_TRUE(s.submit("A1", kA));
  EXPECT_FALSE(s.submit("B1", kB));
  EXPECT_EQ(finish(s, kA), Started{"B1"});
}

TEST(KeySchedulerTest, PartitionOrderingRunsOneAtATimeWhateverTheConcurrency) {
  // given: ordering partition, concurrency 8, distinct keys
  KeyScheduler<std::string> s(Ordering::Partition, 8);
  EXPECT_TRUE(s.submit("m1", kA));
  EXPECT_FALSE(s.submit("m2", kB));
  EXPECT_FALSE(s.submit("m3", kC));
  EXPECT_EQ(s.running(), 1u);
  EXPECT_EQ(s.waiting(), 2u);
  // then: strictly one after the other, in offset order
  EXPECT_EQ(finish(s, kA), Started{"m2"});
  EXPECT_EQ(finish(s, kB), Started{"m3"});
  EXPECT_EQ(finish(s, kC), Started{});
  EXPECT_EQ(s.pending(), 0u);
}

TEST(KeySchedulerTest, NoneOrderingIgnoresKeysUpToTheConcurrency) {
  // given: ordering none, concurrency 2, all the same key
  KeyScheduler<std::string> s(Ordering::None, 2);
  EXPECT_TRUE(s.submit("m1", kA));
  EXPECT_TRUE(s.submit("m2", kA));
  EXPECT_FALSE(s.submit("m3", kA));
  EXPECT_FALSE(s.submit("m4", kA));
  // then: first in, first out
  EXPECT_EQ(finish(s, kA), Started{"m3"});
  EXPECT_EQ(finish(s, kA), Started{"m4"});
  EXPECT_EQ(finish(s, kA), Started{});
  EXPECT_EQ(s.running(), 1u);
  EXPECT_TRUE(s.submit("m5", kB));  // a free slot: starts at once
  EXPECT_EQ(s.running(), 2u);
}

TEST(KeySchedulerTest, FinishAppendsToStarted) {
  KeyScheduler<std::string> s(Ordering::Key, 1);
  EXPECT_TRUE(s.submit("A1", kA));
  EXPECT_FALSE(s.submit("B1", kB));
  Started started{"earlier"};
  s.finish(kA, started);
  EXPECT_EQ(started, (Started{"earlier", "B1"}));
}

TEST(KeySchedulerTest, TakeWaitingReturnsWaitingMessagesOldestFirst) {
  // given: concurrency 1; A1 runs, four messages of three keys wait
  KeyScheduler<std::string> s(Ordering::Key, 1);
  EXPECT_TRUE(s.submit("A1", kA));
  EXPECT_FALSE(s.submit("B1", kB));
  EXPECT_FALSE(s.submit("A2", kA));
  EXPECT_FALSE(s.submit("C1", kC));
  EXPECT_FALSE(s.submit("B2", kB));
  // when
  Started taken{"earlier"};
  s.takeWaiting(taken);
  // then: appended in arrival order across keys; A1 still runs
  EXPECT_EQ(taken, (Started{"earlier", "B1", "A2", "C1", "B2"}));
  EXPECT_EQ(s.waiting(), 0u);
  EXPECT_EQ(s.running(), 1u);
  // and the running one finishes without starting anything, then new messages schedule anew
  EXPECT_EQ(finish(s, kA), Started{});
  EXPECT_EQ(s.pending(), 0u);
  EXPECT_TRUE(s.submit("B3", kB));
  EXPECT_FALSE(s.submit("A3", kA));
  EXPECT_EQ(finish(s, kB), Started{"A3"});
  EXPECT_EQ(finish(s, kA), Started{});
  EXPECT_EQ(s.pending(), 0u);
}

TEST(KeySchedulerTest, AfterTakeWaitingARunningKeyStaysSerialized) {
  // given: A1 runs, A2 waits; A2 is taken out
  KeyScheduler<std::string> s(Ordering::Key, 2);
  EXPECT_TRUE(s.submit("A1", kA));
  EXPECT_FALSE(s.submit("A2", kA));
  Started taken;
  s.takeWaiting(taken);
  EXPECT_EQ(taken, Started{"A2"});
  // when: another A arrives while A1 still runs
  // then: it waits for A1, although a slot is free
  EXPECT_FALSE(s.submit("A3", kA));
  EXPECT_TRUE(s.submit("B1", kB));
  EXPECT_EQ(finish(s, kA), Started{"A3"});
  EXPECT_EQ(finish(s, kA), Started{});
  EXPECT_EQ(finish(s, kB), Started{});
  EXPECT_EQ(s.pending(), 0u);
}

TEST(KeySchedulerTest, TakeWaitingOfAReadyKeyThatIsNotRunning) {
  // given: concurrency 1; A1 done, B1 (older than A2) took the slot, so A is ready, not running
  KeyScheduler<std::string> s(Ordering::Key, 1);
  EXPECT_TRUE(s.submit("A1", kA));
  EXPECT_FALSE(s.submit("B1", kB));
  EXPECT_FALSE(s.submit("A2", kA));
  EXPECT_EQ(finish(s, kA), Started{"B1"});
  // when
  Started taken;
  s.takeWaiting(taken);
  EXPECT_EQ(taken, Started{"A2"});
  // then: a new A waits for the slot only, and gets it when B1 finishes
  EXPECT_FALSE(s.submit("A3", kA));
  EXPECT_EQ(s.waiting(), 1u);
  EXPECT_EQ(finish(s, kB), Started{"A3"});
  EXPECT_EQ(finish(s, kA), Started{});
  EXPECT_EQ(s.pending(), 0u);
}

TEST(KeySchedulerTest, TakeWaitingWithoutKeysIsFifo) {
  for (Ordering ordering : {Ordering::Partition, Ordering::None}) {
    KeyScheduler<std::string> s(ordering, 1);
    EXPECT_TRUE(s.submit("m1", kA));
    EXPECT_FALSE(s.submit("m2", kB));
    EXPECT_FALSE(s.submit("m3", kA));
    Started taken;
    s.takeWaiting(taken);
    EXPECT_EQ(taken, (Started{"m2", "m3"}));
    EXPECT_EQ(s.waiting(), 0u);
    EXPECT_EQ(finish(s, kA), Started{});
    EXPECT_TRUE(s.submit("m4", kB));
    EXPECT_EQ(s.running(), 1u);
  }
}

TEST(KeySchedulerTest, HundredThousandMessagesOverThousandKeys) {
  // given: 100k messages over 1000 keys arriving while random running ones finish
  constexpr size_t kMessages = 100'000;
  constexpr uint64_t kKeys = 1000;
  constexpr size_t kConcurrency = 16;
  std::mt19937_64 rng(20240607);
  KeyScheduler<size_t> s(Ordering::Key, kConcurrency);
  CommitTracker tracker;
  std::vector<uint64_t> key_of;  // message id -> key
  std::vector<int> starts(kMessages, 0);
  std::unordered_map<uint64_t, std::vector<size_t>> arrived;  // key -> ids, arrival order
  std::unordered_map<uint64_t, size_t> next_start;            // key -> index into arrived[key]
  std::unordered_map<uint64_t, int> running_per_key;
  std::vector<size_t> running;
  size_t max_running = 0;
  size_t done = 0;
  bool order_ok = true;
  bool exclusive_ok = true;
  bool once_ok = true;

  auto start = [&](size_t id) {
    const uint64_t key = key_of[id];
    order_ok = order_ok && arrived[key][next_start[key]++] == id;
    exclusive_ok = exclusive_ok && running_per_key[key]++ == 0;
    once_ok = once_ok && starts[id]++ == 0;
    running.push_back(id);
  };
  auto finish_random = [&] {
    const size_t i = std::uniform_int_distribution<size_t>(0, running.size() - 1)(rng);
    const size_t id = running[i];
    running[i] = running.back();
    running.pop_back();
    --running_per_key[key_of[id]];
    ++done;
    tracker.complete(static_cast<int64_t>(id));
    std::vector<size_t> started;
    s.finish(key_of[id], started);
    for (size_t next : started) start(next);
  };

  // when: arrivals slightly outpace completions, so a backlog builds up, then everything drains
  std::bernoulli_distribution arrive(0.55);
  // skewed keys: a few hot keys collide constantly, the rest are spread out
  std::uniform_int_distribution<uint64_t> any_key(0, kKeys - 1);
  std::uniform_int_distribution<uint64_t> hot_key(0, 9);
  std::bernoulli_distribution hot(0.3);
  size_t submitted = 0;
  while (submitted < kMessages || !running.empty()) {
    if (submitted < kMessages && (running.empty() || arrive(rng))) {
      const size_t id = submitted++;
      const uint64_t key = (hot(rng) ? hot_key(rng) : any_key(rng)) * 0x9E3779B97F4A7C15ull;
      key_of.push_back(key);
      arrived[key].push_back(id);
      tracker.begin(static_cast<int64_t>(id));
      if (s.submit(id, key)) start(id);
    } else {
      finish_random();
    }
    ASSERT_EQ(s.running(), running.size());
    ASSERT_EQ(s.waiting(), submitted - done - running.size());
    ASSERT_LE(s.running(), kConcurrency);
    max_running = std::max(max_running, running.size());
  }

  // then: every message started once, each key in arrival order and one at a time
  EXPECT_TRUE(order_ok);
  EXPECT_TRUE(exclusive_ok);
  EXPECT_TRUE(once_ok);
  for (size_t id = 0; id < kMessages; ++id) ASSERT_EQ(starts[id], 1) << "message " << id;
  for (const auto& [key, ids] : arrived) EXPECT_EQ(next_start[key], ids.size());
  EXPECT_EQ(max_running, kConcurrency);
  EXPECT_EQ(s.running(), 0u);
  EXPECT_EQ(s.waiting(), 0u);
  EXPECT_EQ(s.pending(), 0u);
  EXPECT_EQ(tracker.commitPosition(), static_cast<int64_t>(kMessages));
  EXPECT_EQ(tracker.inflight(), 0u);
}

}  // namespace
}  // namespace kpipe::pipeline
