#include "daemon/dedup/redis_store.h"

#include "tests/support/redis_server.h"
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kpipe::dedup {
namespace {

using namespace std::chrono_literals;
using kpipe::testing::RedisServer;
using Clock = std::chrono::steady_clock;

constexpr auto kAnswerDeadline = 5s;

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// A plain client to look at (and tamper with) what the store keeps in Redis.
class RawRedis {
 public:
  explicit RawRedis(const RedisServer& server)
      : context_(redisConnect(server.host().c_str(), server.port())) {}
  ~RawRedis() { redisFree(context_); }

  ReplyPtr command(std::vector<std::string> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    return ReplyPtr(static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data())));
  }
  std::string text(std::vector<std::string> args) {
    ReplyPtr reply = command(std::move(args));
    if (!reply) return "<no reply>";
    if (reply->type == REDIS_REPLY_NIL) return "<nil>";
    if (reply->type == REDIS_REPLY_INTEGER) return std::to_string(reply->integer);
    return std::string(reply->str, reply->len);
  }
  long long integer(std::vector<std::string> args) {
    ReplyPtr reply = command(std::move(args));
    return reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
  }

 private:
  redisContext* context_;
};

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KPIPE_REQUIRE_REDIS_SERVER();
    server_ = std::make_unique<RedisServer>();
  }

  config::StoreSpec specFor(const RedisServer& server, int db = 0) {
    config::StoreSpec spec;
    spec.name = "shared";
    spec.type = config::StoreType::Redis;
    spec.redis.host = server.host();
    spec.redis.port = server.port();
    spec.redis.db = db;
    spec.redis.display =
        "redis://" + server.host() + ":" + std::to_string(server.port()) + "/" + std::to_string(db);
    spec.timeout = 1s;
    spec.prefix = "test:";
    return spec;
  }

  // Runs the io_context until `done`, or fails the test after `timeout`.
  bool runUntil(const std::function<bool()>& done, Clock::duration timeout = kAnswerDeadline) {
    const auto deadline = Clock::now() + timeout;
    while (!done()) {
      if (Clock::now() >= deadline) return false;
      io_.run_one_for(10ms);
    }
    return true;
  }

  ReserveReply reserve(Session& session, std::string_view id, std::string_view owner) {
    auto reply = std::make_shared<std::optional<ReserveReply>>();
    session.reserve(id, owner, [reply](const ReserveReply& r) { *reply = r; });
    if (!runUntil([&] { return reply->has_value(); })) {
      ADD_FAILURE() << "reserve " << id << ": no answer";
      return ReserveReply{ReserveResult::New, "no answer"};
    }
    return **reply;
  }
  // The error, empty when confirmed.
  std::string confirm(Session& session, std::string_view id) {
    auto reply = std::make_shared<std::optional<std::string>>();
    session.confirm(id, [reply](std::string_view error) { *reply = std::string(error); });
    if (!runUntil([&] { return reply->has_value(); })) {
      ADD_FAILURE() << "confirm " << id << ": no answer";
      return "no answer";
    }
    return **reply;
  }
  ReserveResult reserved(Session& session, std::string_view id, std::string_view owner) {
    ReserveReply reply = reserve(session, id, owner);
    EXPECT_EQ(reply.error, "");
    return reply.result;
  }
  // Retries until the store answers without error (it reconnects by itself).
  ReserveReply reserveOnceUp(Session& session, std::string_view id, std::string_view owner,
                             Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    ReserveReply reply = reserve(session, id, owner);
    while (!reply.error.empty() && Clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
      reply = reserve(session, id, owner);
    }
    return reply;
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::unique_ptr<RedisServer> server_;
};

TEST_F(RedisStoreTest, ReserveThenConfirmAnswersEveryOwner) {
  auto store = makeRedisStore(specFor(*server_), nullptr);
  auto session = store->open(io_, "p");
  EXPECT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);
  EXPECT_EQ(reserved(*session, "a", "o2"), ReserveResult::InProgress);
  // o1's first answer may have been lost: asking again is not someone else's reservation
  EXPECT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);
  EXPECT_EQ(confirm(*session, "a"), "");
  EXPECT_EQ(reserved(*session, "a", "o1"), ReserveResult::Done);
  EXPECT_EQ(reserved(*session, "a", "o2"), ReserveResult::Done);
  EXPECT_EQ(reserved(*session, "b", "o2"), ReserveResult::New);
}

TEST_F(RedisStoreTest, KeepsReservationsAndConfirmedIdsUnderThePrefixWithTheirTtls) {
  // given
  config::StoreSpec spec = specFor(*server_);
  spec.reservation_ttl = 10min;
  spec.ttl = 24h;
  auto store = makeRedisStore(spec, nullptr);
  auto session = store->open(io_, "p");
  RawRedis raw(*server_);
  // when
  ASSERT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);
  // then: the owner is the store's instance plus the caller's owner
  EXPECT_TRUE(raw.text({"GET", "test:p:a"}).starts_with("r:"));
  EXPECT_TRUE(raw.text({"GET", "test:p:a"}).ends_with("/o1"));
  EXPECT_GT(raw.integer({"PTTL", "test:p:a"}), 9 * 60 * 1000);

  // given: the reservation has aged
  raw.command({"PEXPIRE", "test:p:a", "5000"});
  // when: its owner asks again
  ASSERT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);
  // then: it lives on from now
  EXPECT_GT(raw.integer({"PTTL", "test:p:a"}), 9 * 60 * 1000);

  ASSERT_EQ(confirm(*session, "a"), "");
  EXPECT_EQ(raw.text({"GET", "test:p:a"}), "d");
  EXPECT_GT(raw.integer({"PTTL", "test:p:a"}), 23 * 3600 * 1000);
}

TEST_F(RedisStoreTest, ReleaseDeletesOnlyTheOwnersReservation) {
  auto store = makeRedisStore(specFor(*server_), nullptr);
  auto session = store->open(io_, "p");
  ASSERT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);

  // Releases have no answer, but the store runs operations in order.
  session->release("a", "o2");
  EXPECT_EQ(reserved(*session, "a", "o3"), ReserveResult::InProgress);
  session->release("a", "o1");
  EXPECT_EQ(reserved(*session, "a", "o3"), ReserveResult::New);

  ASSERT_EQ(confirm(*session, "a"), "");
  session->release("a", "o3");
  EXPECT_EQ(reserved(*session, "a", "o1"), ReserveResult::Done);
}

TEST_F(RedisStoreTest, ReservationsAndConfirmedIdsExpire) {
  config::StoreSpec spec = specFor(*server_);
  spec.reservation_ttl = 200ms;
  spec.ttl = 200ms;
  auto store = makeRedisStore(spec, nullptr);
  auto session = store->open(io_, "p");

  // given: a reservation that is never confirmed (its owner crashed)
  ASSERT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);
  ASSERT_EQ(reserved(*session, "a", "o2"), ReserveResult::InProgress);
  std::this_thread::sleep_for(300ms);
  // then: another copy processes the message again rather than losing it
  EXPECT_EQ(reserved(*session, "a", "o2"), ReserveResult::New);

  ASSERT_EQ(confirm(*session, "a"), "");
  ASSERT_EQ(reserved(*session, "a", "o3"), ReserveResult::Done);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(reserved(*session, "a", "o3"), ReserveResult::New);
}

TEST_F(RedisStoreTest, NamespacesDoNotSeeEachOthersIds) {
  auto store = makeRedisStore(specFor(*server_), nullptr);
  auto first = store->open(io_, "p1");
  auto second = store->open(io_, "p2");
  ASSERT_EQ(reserved(*first, "a", "o1"), ReserveResult::New);
  EXPECT_EQ(reserved(*second, "a", "o2"), ReserveResult::New);
  ASSERT_EQ(confirm(*first, "a"), "");
  EXPECT_EQ(reserved(*first, "a", "o3"), ReserveResult::Done);
  EXPECT_EQ(reserved(*second, "a", "o3"), ReserveResult::InProgress);
  ASSERT_EQ(reserved(*first, "b", "o1"), ReserveResult::New);
  ASSERT_EQ(confirm(*first, "b"), "");
  EXPECT_EQ(reserved(*second, "b", "o1"), ReserveResult::New);
}

TEST_F(RedisStoreTest, AuthenticatesAndSelectsTheDatabase) {
  // given
  const std::string password = "s3cret-pw";
  RedisServer secured(password);
  config::StoreSpec spec = specFor(secured, 2);
  spec.redis.password = password;
  config::StoreSpec with_user = specFor(secured);
  with_user.redis.username = "default";
  with_user.redis.password = password;
  // when
  auto store = makeRedisStore(spec, nullptr);
  auto session = store->open(io_, "p");
  auto user_store = makeRedisStore(with_user, nullptr);
  auto user_session = user_store->open(io_, "p");
  // then
  EXPECT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);
  EXPECT_EQ(reserved(*user_session, "b", "o1"), ReserveResult::New);
  RawRedis raw(secured);
  ASSERT_EQ(raw.text({"AUTH", password}), "OK");
  EXPECT_EQ(raw.integer({"EXISTS", "test:p:a"}), 0);
  EXPECT_EQ(raw.integer({"EXISTS", "test:p:b"}), 1);
  ASSERT_EQ(raw.text({"SELECT", "2"}), "OK");
  EXPECT_EQ(raw.integer({"EXISTS", "test:p:a"}), 1);
}

TEST_F(RedisStoreTest, AWrongPasswordIsAnErrorThatDoesNotShowIt) {
  RedisServer secured("s3cret-pw");
  config::StoreSpec wrong = specFor(secured);
  wrong.redis.password = "not-the-password";
  auto wrong_store = makeRedisStore(wrong, nullptr);
  auto wrong_session = wrong_store->open(io_, "p");
  auto none_store = makeRedisStore(specFor(secured), nullptr);
  auto none_session = none_store->open(io_, "p");

  const auto start = Clock::now();
  ReserveReply reply = reserve(*wrong_session, "a", "o1");
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_NE(reply.error.find("WRONGPASS"), std::string::npos) << reply.error;
  EXPECT_NE(reply.error.find(wrong.redis.display), std::string::npos) << reply.error;
  EXPECT_EQ(reply.error.find("not-the-password"), std::string::npos) << reply.error;
  EXPECT_NE(confirm(*wrong_session, "a"), "");

  reply = reserve(*none_session, "a", "o1");
  EXPECT_NE(reply.error.find("NOAUTH"), std::string::npos) << reply.error;
}

TEST_F(RedisStoreTest, AnErrorReplyFailsOnlyItsOperation) {
  auto store = makeRedisStore(specFor(*server_), nullptr);
  auto session = store->open(io_, "p");
  RawRedis raw(*server_);
  ASSERT_EQ(raw.integer({"HSET", "test:p:hash", "f", "v"}), 1);

  // given: one operation of a batch meets a key of the wrong type
  auto wrong = std::make_shared<std::optional<ReserveReply>>();
  auto right = std::make_shared<std::optional<ReserveReply>>();
  session->reserve("hash", "o1", [wrong](const ReserveReply& r) { *wrong = r; });
  session->reserve("fine", "o1", [right](const ReserveReply& r) { *right = r; });
  ASSERT_TRUE(runUntil([&] { return wrong->has_value() && right->has_value(); }));
  // then: Redis's reason is that operation's error; the others run
  EXPECT_NE((*wrong)->error.find("WRONGTYPE"), std::string::npos) << (*wrong)->error;
  EXPECT_EQ((*right)->error, "");
  EXPECT_EQ((*right)->result, ReserveResult::New);

  // given: Redis is out of memory
  ASSERT_EQ(raw.text({"CONFIG", "SET", "maxmemory", "1"}), "OK");
  std::string error = confirm(*session, "fine");
  EXPECT_NE(error.find("OOM"), std::string::npos) << error;
  error = reserve(*session, "other", "o1").error;
  EXPECT_NE(error.find("OOM"), std::string::npos) << error;
  // then: once it has memory again, the same connection goes on
  ASSERT_EQ(raw.text({"CONFIG", "SET", "maxmemory", "0"}), "OK");
  EXPECT_EQ(confirm(*session, "fine"), "");
  EXPECT_EQ(reserved(*session, "fine", "o2"), ReserveResult::Done);
}

TEST_F(RedisStoreTest, LoadsItsScriptsAgainAfterAFlush) {
  auto store = makeRedisStore(specFor(*server_), nullptr);
  auto session = store->open(io_, "p");
  ASSERT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);
  RawRedis raw(*server_);
  ASSERT_EQ(raw.text({"SCRIPT", "FLUSH"}), "OK");
  EXPECT_EQ(reserved(*session, "a", "o2"), ReserveResult::InProgress);
  session->release("a", "o1");
  EXPECT_EQ(reserved(*session, "a", "o2"), ReserveResult::New);
  ASSERT_EQ(raw.text({"SCRIPT", "FLUSH"}), "OK");
  session->release("a", "o2");
  EXPECT_EQ(reserved(*session, "a", "o3"), ReserveResult::New);
}

TEST_F(RedisStoreTest, RedisDownAnswersEveryOperationWithAnErrorPromptlyThenRecovers) {
  auto store = makeRedisStore(specFor(*server_), nullptr);
  auto session = store->open(io_, "p");
  ASSERT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);

  // given
  server_->stop();
  // when: a burst, then single operations across several reconnect intervals
  const auto start = Clock::now();
  auto answered = std::make_shared<int>(0);
  auto errors = std::make_shared<std::vector<std::string>>();
  for (int i = 0; i < 50; ++i) {
    session->reserve("id" + std::to_string(i), "o1", [=](const ReserveReply& r) {
      ++*answered;
      errors->push_back(r.error);
    });
  }
  session->confirm("a", [=](std::string_view error) {
    ++*answered;
    errors->push_back(std::string(error));
  });
  ASSERT_TRUE(runUntil([&] { return *answered == 51; }, 1s));
  for (int i = 0; i < 10; ++i) {
    const auto asked = Clock::now();
    errors->push_back(reserve(*session, "b", "o1").error);
    EXPECT_LT(Clock::now() - asked, 1s);
    std::this_thread::sleep_for(30ms);
  }
  EXPECT_LT(Clock::now() - start, 2s);
  // then
  for (const std::string& error : *errors) EXPECT_NE(error, "");
  EXPECT_NE(errors->back().find(specFor(*server_).redis.display + ": Connection refused"),
            std::string::npos)
      << errors->back();

  // when
  server_->restart();
  // then
  ReserveReply reply = reserveOnceUp(*session, "a", "o1", 3s);
  EXPECT_EQ(reply.error, "");
  EXPECT_EQ(reply.result, ReserveResult::New);  // a restarted Redis without persistence is empty
}

TEST_F(RedisStoreTest, ConnectsOnlyWhenUsedSoARedisDownAtStartIsNoStartupFailure) {
  // given
  auto store = makeRedisStore(specFor(*server_), nullptr);
  auto session = store->open(io_, "p");
  std::this_thread::sleep_for(100ms);
  {
    RawRedis raw(*server_);
    EXPECT_NE(raw.text({"INFO", "clients"}).find("connected_clients:1\r\n"), std::string::npos)
        << "only this test's own client";
  }
  // when: Redis is down at the first operation
  server_->stop();
  EXPECT_NE(reserve(*session, "a", "o1").error, "");
  server_->restart();
  // then
  ReserveReply reply = reserveOnceUp(*session, "a", "o1", 3s);
  EXPECT_EQ(reply.error, "");
  EXPECT_EQ(reply.result, ReserveResult::New);
}

TEST_F(RedisStoreTest, AStalledRedisTimesOutThenRecovers) {
  config::StoreSpec spec = specFor(*server_);
  spec.timeout = 300ms;
  auto store = makeRedisStore(spec, nullptr);
  auto session = store->open(io_, "p");
  ASSERT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);

  // given
  server_->pause();
  // when: one operation on the open connection, one on a new connection
  for (const char* id : {"b", "c"}) {
    const auto start = Clock::now();
    ReserveReply reply = reserve(*session, id, "o1");
    const auto took = Clock::now() - start;
    // then
    EXPECT_NE(reply.error.find("no answer within 300 ms"), std::string::npos) << reply.error;
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 1500ms);
  }

  // when
  server_->resume();
  // then: whether or not Redis ran the reserve whose answer timed out, its owner gets New
  ReserveReply reply = reserveOnceUp(*session, "b", "o1", 3s);
  EXPECT_EQ(reply.error, "");
  EXPECT_EQ(reply.result, ReserveResult::New);
  EXPECT_EQ(reserved(*session, "b", "o2"), ReserveResult::InProgress);
}

TEST_F(RedisStoreTest, ManyConcurrentReservesAllAnswerAndTravelInBatches) {
  auto store = makeRedisStore(specFor(*server_), nullptr);
  std::vector<std::unique_ptr<Session>> sessions;
  sessions.push_back(store->open(io_, "p1"));
  sessions.push_back(store->open(io_, "p2"));
  constexpr int kPerSession = 5000;
  auto answered = std::make_shared<int>(0);
  auto failed = std::make_shared<int>(0);
  const uint64_t trips_before = redisRoundTripsForTest();

  for (int i = 0; i < kPerSession; ++i) {
    for (auto& session : sessions) {
      session->reserve("id" + std::to_string(i), "o1", [=](const ReserveReply& r) {
        ++*answered;
        if (!r.error.empty() || r.result != ReserveResult::New) ++*failed;
      });
    }
  }
  ASSERT_TRUE(runUntil([&] { return *answered == 2 * kPerSession; }, 20s)) << *answered;

  EXPECT_EQ(*failed, 0);
  const uint64_t trips = redisRoundTripsForTest() - trips_before;
  // Each round trip carries at most 512 operations, and on average far more than one.
  EXPECT_GE(trips, 2u * kPerSession / 512);
  EXPECT_LE(trips, 2u * kPerSession / 5) << "operations did not travel in batches";
  RawRedis raw(*server_);
  EXPECT_EQ(raw.integer({"DBSIZE"}), 2 * kPerSession);
}

}  // namespace
}  // namespace kpipe::dedup
