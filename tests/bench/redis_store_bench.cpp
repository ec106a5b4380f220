// Reserve + confirm per id through the Redis store, against a redis-server of its own, with many
// requests in flight: pipelined batches (max_batch 512) against one round trip per operation
// (max_batch 1).
//   build/tests/bench/redis_store_bench --benchmark_counters_tabular=true

#include "daemon/dedup/redis_store.h"

#include "tests/support/redis_server.h"
#include <benchmark/benchmark.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>

namespace kpipe::dedup {
namespace {

using namespace std::chrono_literals;

constexpr int kIdsPerIteration = 10'000;

void reserveAndConfirm(benchmark::State& state) {
  if (auto missing = testing::redisServerMissing()) {
    state.SkipWithError(missing->c_str());
    return;
  }
  // A server per run, so that the ids of earlier runs do not pile up in it.
  std::unique_ptr<testing::RedisServer> server;
  try {
    server = std::make_unique<testing::RedisServer>();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  config::StoreSpec spec;
  spec.name = "bench";
  spec.type = config::StoreType::Redis;
  spec.redis.host = server->host();
  spec.redis.port = server->port();
  BatchingOptions options;
  options.max_batch = static_cast<size_t>(state.range(0));
  const int in_flight = static_cast<int>(state.range(1));
  auto store = makeRedisStore(spec, nullptr, options);
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  auto session = store->open(io, "bench");

  uint64_t next_id = 0;
  uint64_t failures = 0;
  const uint64_t trips_before = redisRoundTripsForTest();
  for (auto _ : state) {
    int started = 0;
    int finished = 0;
    // Each finished id starts the next one, so `in_flight` ids stay outstanding.
    std::function<void()> start = [&] {
      std::string id = std::to_string(next_id++);
      ++started;
      session->reserve(id, "owner", [&, id](const ReserveReply& reply) {
        if (!reply.error.empty() || reply.result != ReserveResult::New) ++failures;
        session->confirm(id, [&](std::string_view error) {
          if (!error.empty()) ++failures;
          ++finished;
          if (started < kIdsPerIteration) start();
        });
      });
    };
    for (int i = 0; i < in_flight && started < kIdsPerIteration; ++i) start();
    while (finished < kIdsPerIteration) {
      if (io.run_one_for(5s) == 0) {
        state.SkipWithError("the store stopped answering");
        return;
      }
    }
  }
  if (failures > 0) {
    state.SkipWithError((std::to_string(failures) + " operations failed").c_str());
    return;
  }
  const double ids = static_cast<double>(state.iterations()) * kIdsPerIteration;
  state.counters["ids/s"] = benchmark::Counter(ids, benchmark::Counter::kIsRate);
  state.counters["ops/s"] = benchmark::Counter(2 * ids, benchmark::Counter::kIsRate);
  state.counters["ops/trip"] =
      2 * ids / static_cast<double>(redisRoundTripsForTest() - trips_before);
}
BENCHMARK(reserveAndConfirm)
    ->ArgNames({"max_batch", "in_flight"})
    ->Args({512, 1000})
    ->Args({1, 1000})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kpipe::dedup
