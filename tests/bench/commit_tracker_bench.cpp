// CommitTracker (daemon/pipeline/commit_tracker.h): begin + complete per message, with N
// messages in flight (the worker begins each consumed offset and completes it once its effects
// are acknowledged; max_pending bounds N at 2048 by default).
//
//   InOrder/N         completions in offset order: the commit position moves on each one
//   Random/N          each completion is a random one of the N in flight (acknowledgements of
//                     different keys race): a binary search, and the position moves in steps
//   HeadLast/N        in each run of N offsets the first completes last (one slow message holds
//                     the commit position; then it jumps N)
// Items/s are messages (one begin and one complete each).
//   cmake --build build --target commit_tracker_bench && build/tests/bench/commit_tracker_bench
#include "daemon/pipeline/commit_tracker.h"

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

namespace kpipe::pipeline {
namespace {

void BM_InOrder(benchmark::State& state) {
  const auto window = static_cast<int64_t>(state.range(0));
  CommitTracker tracker;
  int64_t next = 0;
  for (; next < window; ++next) tracker.begin(next, next);
  int64_t oldest = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(tracker.complete(oldest++));
    tracker.begin(next, next);
    ++next;
  }
  benchmark::DoNotOptimize(tracker.commitPosition());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_Random(benchmark::State& state) {
  const auto window = static_cast<size_t>(state.range(0));
  CommitTracker tracker;
  std::vector<int64_t> in_flight;  // offsets begun, not completed
  int64_t next = 0;
  for (; next < static_cast<int64_t>(window); ++next) {
    tracker.begin(next, next);
    in_flight.push_back(next);
  }
  std::mt19937_64 rng(3);
  for (auto _ : state) {
    const size_t pick = rng() % in_flight.size();
    benchmark::DoNotOptimize(tracker.complete(in_flight[pick]));
    in_flight[pick] = next;
    tracker.begin(next, next);
    ++next;
  }
  benchmark::DoNotOptimize(tracker.commitPosition());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["inflight"] = static_cast<double>(tracker.inflight());
}

void BM_HeadLast(benchmark::State& state) {
  const auto window = static_cast<int64_t>(state.range(0));
  CommitTracker tracker;
  int64_t base = 0;
  int64_t step = 0;  // within the current run: 0 .. window-1
  for (int64_t o = 0; o < window; ++o) tracker.begin(o, o);
  for (auto _ : state) {
    // Completes base+window-1, ..., base+1, then base; then the next run is begun.
    const int64_t offset = step + 1 < window ? base + window - 1 - step : base;
    benchmark::DoNotOptimize(tracker.complete(offset));
    if (++step == window) {  // the next run: one begin per message, as the others
      for (int64_t o = 0; o < window; ++o) tracker.begin(base + window + o, o);
      base += window;
      step = 0;
    }
  }
  benchmark::DoNotOptimize(tracker.commitPosition());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

BENCHMARK(BM_InOrder)->Arg(1)->Arg(64)->Arg(2048);
BENCHMARK(BM_Random)->Arg(64)->Arg(2048);
BENCHMARK(BM_HeadLast)->Arg(64)->Arg(2048);

}  // namespace
}  // namespace kpipe::pipeline
