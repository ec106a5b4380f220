#pragma once
// A real redis-server for tests: a child process on a free loopback port, in memory only
// (no RDB, no AOF), with its own scratch directory. Not thread-safe: use it from the thread
// that created it (the child is killed when that thread exits, should the test crash).
//
//   KPIPE_REQUIRE_REDIS_SERVER();   // in a test or SetUp(): skips (fails on CI) without it
//   kpipe::testing::RedisServer redis;
//   connect to redis.host():redis.port(); redis.pause(); redis.resume(); redis.stop(); ...

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace kpipe::testing {

// Why redis-server cannot be run here (not on PATH), or nullopt.
std::optional<std::string> redisServerMissing();
// CI=true (or 1) in the environment: missing tools fail tests instead of skipping them.
bool runningOnCi();

class RedisServer {
 public:
  // Starts redis-server and waits until it answers; throws std::runtime_error when it does
  // not (with the end of its log). `password` sets requirepass when not empty.
  explicit RedisServer(std::string password = {});
  ~RedisServer();  // SIGKILL: nothing to keep
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }

  void stop();     // SIGTERM and wait: the port refuses connections
  void pause();    // SIGSTOP: connections are accepted by the kernel but never answered
  void resume();   // SIGCONT
  void restart();  // stop (if running), then start again on the same port; empty again

 private:
  // Starts on port_; false when the child exited (the port was taken meanwhile).
  bool start();
  std::string logTail() const;

  std::string password_;
  std::string host_ = "127.0.0.1";
  uint16_t port_ = 0;
  std::filesystem::path dir_;  // redis-server's working directory and log
  pid_t pid_ = -1;
};

}  // namespace kpipe::testing

// In a test body or SetUp(): without redis-server, fails on CI and skips elsewhere.
#define KPIPE_REQUIRE_REDIS_SERVER()                                            \
  do {                                                                          \
    if (auto kpipe_missing = ::kpipe::testing::redisServerMissing()) {          \
      if (::kpipe::testing::runningOnCi()) FAIL() << *kpipe_missing << " (CI)"; \
      GTEST_SKIP() << *kpipe_missing;                                           \
    }                                                                           \
  } while (false)
