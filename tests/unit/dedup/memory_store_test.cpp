#include "daemon/dedup/memory_store.h"

#include <gtest/gtest.h>

namespace kpipe::dedup {
namespace {

using namespace std::chrono_literals;

struct ManualClock {
  std::chrono::steady_clock::time_point now{};
  MemoryTable::Clock fn() {
    return [this] { return now; };
  }
};

TEST(MemoryTableTest, ReserveConfirmThenDuplicate) {
  ManualClock clock;
  MemoryTable store(100, clock.fn());
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::New);
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::InProgress);
  store.confirm("a", 1h);
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::Done);
  EXPECT_EQ(store.reserve("b", 1min), ReserveResult::New);
}

TEST(MemoryTableTest, UnconfirmedReservationExpiresSoTheMessageIsProcessedAgain) {
  // given: a reservation that is never confirmed (the effect failed or we crashed)
  ManualClock clock;
  MemoryTable store(100, clock.fn());
  ASSERT_EQ(store.reserve("a", 1min), ReserveResult::New);
  // when: its TTL passes
  clock.now += 61s;
  // then: the id is free again (at-least-once), not a duplicate
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::New);
}

TEST(MemoryTableTest, ReleaseFreesTheId) {
  MemoryTable store(100);
  ASSERT_EQ(store.reserve("a", 1min), ReserveResult::New);
  store.release("a");
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::New);
}

TEST(MemoryTableTest, ConfirmedIdsExpireAfterTheirTtl) {
  ManualClock clock;
  MemoryTable store(100, clock.fn());
  store.reserve("a", 1min);
  store.confirm("a", 1h);
  clock.now += 59min;
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::Done);
  clock.now += 2min;
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::New);
}

// With at most 4 ids held, each of the eviction's sample runs (4 used slots) sees them all:
// eviction is exact. (Larger tables evict an approximately oldest id, below.)
TEST(MemoryTableTest, SmallTableEvictsTheOldestFirst) {
  ManualClock clock;
  MemoryTable store(3, clock.fn());
  for (const char* id : {"a", "b", "c", "d", "e"}) {
    store.reserve(id, 1h);
    store.confirm(id, 1h);
    clock.now += 1s;
  }
  EXPECT_LE(store.size(), 3u);
  EXPECT_EQ(store.evictedForTest(), 2u);
  EXPECT_EQ(store.reserve("e", 1min), ReserveResult::Done);
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::New);  // evicted first
}

// A large table evicts an approximately oldest id: the earliest expiry of a sample of 16. An id
// among the newest half is evicted only if all 16 sampled ids are that new (1 in 65536).
TEST(MemoryTableTest, LargeTableEvictsOldIdsAndKeepsRecentOnes) {
  // given: ten times max_entries ids, confirmed one millisecond apart
  ManualClock clock;
  MemoryTable store(1000, clock.fn());
  auto id = [](int i) { return "id-" + std::to_string(i); };
  for (int i = 0; i < 10'000; ++i) {
    store.reserve(id(i), 1min);
    store.confirm(id(i), 1h);
    clock.now += 1ms;
  }
  // then: the table holds max_entries, the newest half are all remembered
  EXPECT_EQ(store.size(), 1000u);
  EXPECT_EQ(store.evictedForTest(), 9000u);
  int recent_done = 0;
  for (int i = 9'500; i < 10'000; ++i)
    recent_done += store.reserve(id(i), 1min) == ReserveResult::Done;
  EXPECT_EQ(recent_done, 500);
  // and most of the oldest ids were forgotten (reserving them now is New)
  int old_done = 0;
  for (int i = 0; i < 1'000; ++i) old_done += store.reserve(id(i), 1min) == ReserveResult::Done;
  EXPECT_LT(old_done, 10);
}

TEST(MemoryTableTest, GrowsWithoutForgettingIds) {
  MemoryTable store(100'000);
  for (int i = 0; i < 60'000; ++i) {
    ASSERT_EQ(store.reserve("g" + std::to_string(i), 1min), ReserveResult::New);
    store.confirm("g" + std::to_string(i), 1h);
  }
  EXPECT_EQ(store.size(), 60'000u);
  EXPECT_EQ(store.evictedForTest(), 0u);
  // 131072 slots: the last growth took the huge-page-aligned mapping (2 MiB and more).
  EXPECT_EQ(store.bytes(), size_t{2} << 20);
  for (int i = 0; i < 60'000; ++i) {
    ASSERT_EQ(store.reserve("g" + std::to_string(i), 1min), ReserveResult::Done) << i;
  }
}

TEST(MemoryTableTest, SweepFreesExpiredSlots) {
  // given: ids whose reservations expired, never touched again
  ManualClock clock;
  MemoryTable store(1000, clock.fn());
  for (int i = 0; i < 500; ++i) store.reserve("x" + std::to_string(i), 1s);
  clock.now += 2s;
  // when: other operations go on (each moves the sweep hand a few slots)
  for (int i = 0; i < 2000; ++i) store.reserve("live", 1h);
  // then: only the live id is held
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.evictedForTest(), 0u);
}

TEST(MemoryTableTest, IdsDifferingLateOrLongAreDistinct) {
  MemoryTable store(100);
  const std::string long_id(1000, 'z');
  ASSERT_EQ(store.reserve(long_id, 1min), ReserveResult::New);
  store.confirm(long_id, 1h);
  EXPECT_EQ(store.reserve(long_id, 1min), ReserveResult::Done);
  EXPECT_EQ(store.reserve(long_id + "1", 1min), ReserveResult::New);
  EXPECT_EQ(store.reserve(long_id.substr(1), 1min), ReserveResult::New);
  EXPECT_EQ(store.reserve("", 1min), ReserveResult::New);
  EXPECT_EQ(store.reserve("", 1min), ReserveResult::InProgress);
}

TEST(MemoryTableTest, ReleaseKeepsTheOtherIdsOfAProbeRun) {
  // given: more ids than slots between them, so that many share probe runs
  MemoryTable store(3000);
  for (int i = 0; i < 3000; ++i) store.confirm(std::to_string(i), 1h);
  // when: every other id is released (backward-shift deletion moves their neighbours)
  for (int i = 0; i < 3000; i += 2) store.release(std::to_string(i));
  // then: the others are all still found, the released ones are not
  EXPECT_EQ(store.size(), 1500u);
  for (int i = 0; i < 3000; ++i) {
    const auto expected = i % 2 == 0 ? ReserveResult::New : ReserveResult::Done;
    ASSERT_EQ(store.reserve(std::to_string(i), 1min), expected) << i;
  }
}

// A reload restarts a pipeline with a new session on the same store: it must still know the ids
// it saw. Another namespace (pipeline) does not.
TEST(MemoryStoreTest, ANewSessionOfTheSameNamespaceKeepsItsIds) {
  MemoryStore store("ids", 1000, Ttls{});
  boost::asio::io_context io;
  auto reserve = [](Session& session, std::string_view id) {
    ReserveResult answer{};
    session.reserve(id, "owner", [&](const ReserveReply& reply) { answer = reply.result; });
    return answer;
  };
  {
    auto session = store.open(io, "pipeline-a");
    ASSERT_EQ(reserve(*session, "id-1"), ReserveResult::New);
    session->confirm("id-1", [](std::string_view error) { EXPECT_TRUE(error.empty()); });
  }
  auto again = store.open(io, "pipeline-a");
  EXPECT_EQ(reserve(*again, "id-1"), ReserveResult::Done);
  auto other = store.open(io, "pipeline-b");
  EXPECT_EQ(reserve(*other, "id-1"), ReserveResult::New);
}

}  // namespace
}  // namespace kpipe::dedup
