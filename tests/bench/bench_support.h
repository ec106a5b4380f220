#pragma once
// What the micro-benchmarks of tests/bench/ share: the demo config's pipelines as the daemon
// loads them, generated ids, the router's parse, and the counters every benchmark reports.
// bench_main.cpp is every benchmark's main().

#include "daemon/config/spec.h"
#include "daemon/pipeline/router.h"

#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace kpipe::bench {

// $KPIPE_SOURCE_DIR, else the tree this file was compiled from.
std::filesystem::path sourceDir();

// Prints "<program>: why" and exits 1: a benchmark's setup failed.
[[noreturn]] void die(const std::string& why);

// A pipeline of the demo config, as `kpipe run config/kpipe.yaml` loads it.
const config::PipelineSpec& demoPipeline(const std::string& name);

// A random UUID-shaped id (8-4-4-4-12 hex digits).
std::string uuid(std::mt19937_64& rng);

// The router's parse (pipeline::detail::PooledParser); dies on text that is not JSON.
const rapidjson::Value& parseOrDie(pipeline::detail::PooledParser& parser, std::string_view text);

// items/s = messages, bytes/s = their values, and the average message size.
void reportCounters(benchmark::State& state, const std::vector<std::string>& messages);

}  // namespace kpipe::bench
