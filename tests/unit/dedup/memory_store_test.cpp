#include "daemon/dedup/memory_store.h"

#include <gtest/gtest.h>

namespace kpipe::dedup {
namespace {

using namespace std::chrono_literals;

struct ManualClock {
  std::chrono::steady_clock::time_point now{};
  MemoryStore::Clock fn() {
    return [this] { return now; };
  }
};

TEST(MemoryStoreTest, ReserveConfirmThenDuplicate) {
  ManualClock clock;
  MemoryStore store(100, clock.fn());
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::New);
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::InProgress);
  store.confirm("a", 1h);
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::Done);
  EXPECT_EQ(store.reserve("b", 1min), ReserveResult::New);
}

TEST(MemoryStoreTest, UnconfirmedReservationExpiresSoTheMessageIsProcessedAgain) {
  // given: a reservation that is never confirmed (the effect failed or we crashed)
  ManualClock clock;
  MemoryStore store(100, clock.fn());
  ASSERT_EQ(store.reserve("a", 1min), ReserveResult::New);
  // when: its TTL passes
  clock.now += 61s;
  // then: the id is free again (at-least-once), not a duplicate
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::New);
}

TEST(MemoryStoreTest, ReleaseFreesTheId) {
  MemoryStore store(100);
  ASSERT_EQ(store.reserve("a", 1min), ReserveResult::New);
  store.release("a");
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::New);
}

TEST(MemoryStoreTest, ConfirmedIdsExpireAfterTheirTtl) {
  ManualClock clock;
  MemoryStore store(100, clock.fn());
  store.reserve("a", 1min);
  store.confirm("a", 1h);
  clock.now += 59min;
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::Done);
  clock.now += 2min;
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::New);
}

TEST(MemoryStoreTest, BoundedByMaxEntriesOldestFirst) {
  ManualClock clock;
  MemoryStore store(3, clock.fn());
  for (const char* id : {"a", "b", "c", "d", "e"}) {
    store.reserve(id, 1h);
    store.confirm(id, 1h);
    clock.now += 1s;
  }
  EXPECT_LE(store.size(), 3u);
  EXPECT_GE(store.evictedForTest(), 2u);
  EXPECT_EQ(store.reserve("e", 1min), ReserveResult::Done);
  EXPECT_EQ(store.reserve("a", 1min), ReserveResult::New);  // evicted first
}

}  // namespace
}  // namespace kpipe::dedup
