// Dedup stores: the memory table's operations per second at its bound and its bytes per id;
// the LMDB store's reserve+confirm per second with batching and without.
//   build-*/tests/bench/dedup_bench --benchmark_counters_tabular=true
#include "daemon/dedup/lmdb_store.h"
#include "daemon/dedup/memory_store.h"

#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>

namespace kpipe::dedup {
namespace {

using namespace std::chrono_literals;

// A fresh id with no allocation, so that the table, not the id, is measured.
class IdMaker {
 public:
  std::string_view operator()(uint64_t n) {
    auto end = std::to_chars(buffer_ + 3, buffer_ + sizeof buffer_, n).ptr;
    return {buffer_, static_cast<size_t>(end - buffer_)};
  }

 private:
  char buffer_[32] = {'i', 'd', '-'};
};

// Heap in use (mallinfo2 counts big blocks, which malloc maps, apart) and resident set. The
// table's slots are mapped by the table itself: MemoryTable::bytes() counts them.
struct MemoryUse {
  size_t heap;
  size_t rss;
};
MemoryUse memoryUse() {
  const struct mallinfo2 info = mallinfo2();
  size_t pages = 0;
  size_t resident = 0;
  std::ifstream("/proc/self/statm") >> pages >> resident;
  return {info.uordblks + info.hblkhd, resident * static_cast<size_t>(sysconf(_SC_PAGESIZE))};
}

void BM_MemoryBytesPerId(benchmark::State& state) {
  const auto ids = static_cast<uint64_t>(state.range(0));
  IdMaker id;
  for (auto _ : state) {
    const MemoryUse before = memoryUse();
    MemoryTable table(ids);
    for (uint64_t n = 0; n < ids; ++n) {
      table.reserve(id(n), 1min);
      table.confirm(id(n), 1h);
    }
    const MemoryUse after = memoryUse();
    state.counters["heap_bytes_per_id"] =
        static_cast<double>(after.heap - before.heap + table.bytes()) / ids;
    state.counters["rss_bytes_per_id"] = static_cast<double>(after.rss - before.rss) / ids;
    state.counters["evicted"] = static_cast<double>(table.evictedForTest());
  }
}
BENCHMARK(BM_MemoryBytesPerId)
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// One table per size, filled to its bound once: later runs go on from where it stands.
MemoryTable& filledTable(uint64_t max_entries) {
  static std::map<uint64_t, std::unique_ptr<MemoryTable>> tables;
  auto& table = tables[max_entries];
  if (!table) {
    table = std::make_unique<MemoryTable>(max_entries);
    IdMaker id;
    for (uint64_t n = 0; n < max_entries; ++n) {
      table->reserve(id(n), 1min);
      table->confirm(id(n), 1h);
    }
  }
  return *table;
}

// Reserves of ids the table holds: each answered Done.
void BM_MemoryDuplicateIds(benchmark::State& state) {
  const auto max_entries = static_cast<uint64_t>(state.range(0));
  MemoryTable& table = filledTable(max_entries);
  IdMaker id;
  uint64_t random = 88172645463325252ULL;
  uint64_t done = 0;
  for (auto _ : state) {
    random ^= random << 13;
    random ^= random >> 7;
    random ^= random << 17;
    done += table.reserve(id(random % max_entries), 1min) == ReserveResult::Done;
  }
  state.counters["done_ratio"] = static_cast<double>(done) / state.iterations();
  state.counters["ops_per_s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}

// Reserve + confirm of new ids in a full table: each one evicts an old id.
void BM_MemoryFreshIds(benchmark::State& state) {
  const auto max_entries = static_cast<uint64_t>(state.range(0));
  MemoryTable& table = filledTable(max_entries);
  static uint64_t next = 1ULL << 40;  // never an id of the fill
  IdMaker id;
  for (auto _ : state) {
    const std::string_view fresh = id(next++);
    benchmark::DoNotOptimize(table.reserve(fresh, 1min));
    table.confirm(fresh, 1h);
  }
  state.counters["ops_per_s"] =
      benchmark::Counter(2.0 * state.iterations(), benchmark::Counter::kIsRate);
}
// The duplicate runs first: it needs the fill's ids, which fresh ids then push out.
BENCHMARK(BM_MemoryDuplicateIds)->Arg(1'000'000)->Arg(10'000'000);
BENCHMARK(BM_MemoryFreshIds)->Arg(1'000'000)->Arg(10'000'000);

// Keeps `window` ids under way (reserve, then confirm) until `total` are confirmed.
class Driver {
 public:
  Driver(Session& session, boost::asio::io_context& io) : session_(session), io_(io) {}

  // Returns the number of errors.
  uint64_t run(uint64_t first, uint64_t total, uint64_t window) {
    next_ = first;
    end_ = first + total;
    confirmed_ = 0;
    errors_ = 0;
    for (uint64_t i = 0; i < window; ++i) launch();
    auto guard = boost::asio::make_work_guard(io_);
    io_.restart();
    while (confirmed_ < total) io_.run_one();
    return errors_;
  }

 private:
  void launch() {
    if (next_ == end_) return;
    const std::string id = "id-" + std::to_string(next_++);
    session_.reserve(id, id, [this, id](const ReserveReply& reply) {
      errors_ += !reply.error.empty();
      session_.confirm(id, [this](std::string_view error) {
        errors_ += !error.empty();
        ++confirmed_;
        launch();
      });
    });
  }

  Session& session_;
  boost::asio::io_context& io_;
  uint64_t next_ = 0;
  uint64_t end_ = 0;
  uint64_t confirmed_ = 0;
  uint64_t errors_ = 0;
};

// Args: max_batch, ids in flight, ids per iteration.
void BM_LmdbReserveConfirm(benchmark::State& state) {
  namespace fs = std::filesystem;
  std::string dir = (fs::temp_directory_path() / "kpipe-lmdb-bench-XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) {
    state.SkipWithError("mkdtemp");
    return;
  }
  config::StoreSpec spec;
  spec.name = "bench";
  spec.path = dir;
  spec.map_size = 4ULL << 30;
  BatchingOptions options;
  options.max_batch = static_cast<size_t>(state.range(0));
  auto made = makeLmdbStore(spec, nullptr, options);
  if (made.index() != 0) {
    state.SkipWithError(std::get<1>(made).c_str());
    return;
  }
  auto store = std::move(std::get<0>(made));
  boost::asio::io_context io;
  auto session = store->open(io, "bench");
  Driver driver(*session, io);
  const auto per_iteration = static_cast<uint64_t>(state.range(2));
  uint64_t first = 0;
  uint64_t errors = 0;
  for (auto _ : state) {
    errors += driver.run(first, per_iteration, static_cast<uint64_t>(state.range(1)));
    first += per_iteration;
  }
  state.counters["errors"] = static_cast<double>(errors);
  state.counters["ops_per_s"] =
      benchmark::Counter(2.0 * static_cast<double>(first), benchmark::Counter::kIsRate);
  session.reset();
  store.reset();
  fs::remove_all(dir);
}
BENCHMARK(BM_LmdbReserveConfirm)
    ->Args({512, 1000, 50'000})
    ->Args({1, 1000, 500})
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace kpipe::dedup
