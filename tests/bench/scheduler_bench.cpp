// KeyScheduler (daemon/pipeline/key_scheduler.h): submit + finish per message, as a worker's
// partition drives it at full speed: messages are submitted in offset order while fewer than
// max_pending (2048) are held, and each time `concurrency` (64) run, one of them finishes (the
// oldest, as acknowledgements mostly arrive; or a random one) and whatever it releases starts.
//
//   key_distinct        ordering: key, every message a new key (no waiting on keys)
//   key_10k             ordering: key, keys drawn from 10,000 (rare waits)
//   key_hot4            ordering: key, 90% of the messages on 4 hot keys, the rest distinct
//                       (most messages wait for their key; finish() hands them on)
//   key_one             ordering: key, a single key (everything waits: one at a time)
//   partition           ordering: partition (one at a time, FIFO)
//   none                ordering: none (64 at a time, FIFO)
// Items/s are messages (one submit and one finish each, plus the driving loop's own cost).
//   cmake --build build --target scheduler_bench && build/tests/bench/scheduler_bench
#include "daemon/pipeline/key_scheduler.h"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

namespace kpipe::pipeline {
namespace {

constexpr size_t kConcurrency = 64;
constexpr size_t kMaxPending = 2048;
constexpr size_t kKeys = 1 << 16;  // the key sequence repeats after this many messages

// A 64-bit mix (splitmix64): key hashes as the router makes them, spread over 64 bits.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

enum class Keys { Distinct, TenThousand, Hot4, One };

std::vector<uint64_t> keySequence(Keys keys) {
  std::mt19937_64 rng(42);
  std::vector<uint64_t> out(kKeys);
  for (size_t i = 0; i < kKeys; ++i) {
    switch (keys) {
      case Keys::Distinct:
        out[i] = mix(i);
        break;
      case Keys::TenThousand:
        out[i] = mix(rng() % 10'000);
        break;
      case Keys::Hot4:
        out[i] = rng() % 10 < 9 ? mix(rng() % 4) : mix(1'000'000 + i);
        break;
      case Keys::One:
        out[i] = mix(7);
        break;
    }
  }
  return out;
}

struct Running {
  int* item;
  uint64_t key;
};

void BM_Scheduler(benchmark::State& state, config::Ordering ordering, Keys keys,
                  bool random_finish) {
  const std::vector<uint64_t> sequence = keySequence(keys);
  // Items are what the worker passes (InFlight*): a pointer, never dereferenced here.
  std::vector<int> payload(kKeys);
  KeyScheduler<int*> scheduler(ordering, kConcurrency);
  // Started messages (with their keys: the worker keeps the key in its InFlight), oldest first.
  std::vector<Running> running;
  std::vector<int*> started;
  std::vector<uint64_t> started_keys(kKeys);
  running.reserve(kMaxPending);
  std::mt19937 rng(7);
  uint64_t n = 0;
  size_t head = 0;  // running[head..] are the ones not finished yet (oldest-first mode)
  uint64_t waited = 0;
  for (auto _ : state) {
    const size_t slot = n & (kKeys - 1);
    int* item = &payload[slot];
    const uint64_t key = sequence[slot];
    started_keys[slot] = key;
    if (scheduler.submit(item, key)) {
      running.push_back({item, key});
    } else {
      ++waited;
    }
    ++n;
    // At the bound (or with every slot running), one finishes and hands on what may start.
    while (scheduler.pending() >= kMaxPending || running.size() - head >= kConcurrency) {
      size_t pick = head;
      if (random_finish) pick = head + rng() % (running.size() - head);
      const Running done = running[pick];
      running[pick] = running[head];
      ++head;
      started.clear();
      scheduler.finish(done.key, started);
      for (int* s : started) {
        running.push_back({s, started_keys[static_cast<size_t>(s - payload.data())]});
      }
    }
    if (head > kMaxPending) {  // compact, now and then
      running.erase(running.begin(), running.begin() + static_cast<ptrdiff_t>(head));
      head = 0;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["waited_share"] = benchmark::Counter(
      static_cast<double>(waited) / static_cast<double>(std::max<uint64_t>(1, n)));
}

using config::Ordering;
BENCHMARK_CAPTURE(BM_Scheduler, key_distinct, Ordering::Key, Keys::Distinct, false);
BENCHMARK_CAPTURE(BM_Scheduler, key_10k, Ordering::Key, Keys::TenThousand, false);
BENCHMARK_CAPTURE(BM_Scheduler, key_10k_random_finish, Ordering::Key, Keys::TenThousand, true);
BENCHMARK_CAPTURE(BM_Scheduler, key_hot4, Ordering::Key, Keys::Hot4, false);
BENCHMARK_CAPTURE(BM_Scheduler, key_hot4_random_finish, Ordering::Key, Keys::Hot4, true);
BENCHMARK_CAPTURE(BM_Scheduler, key_one, Ordering::Key, Keys::One, false);
BENCHMARK_CAPTURE(BM_Scheduler, partition, Ordering::Partition, Keys::TenThousand, false);
BENCHMARK_CAPTURE(BM_Scheduler, none, Ordering::None, Keys::TenThousand, false);
BENCHMARK_CAPTURE(BM_Scheduler, none_random_finish, Ordering::None, Keys::TenThousand, true);

}  // namespace
}  // namespace kpipe::pipeline
