// The decode stage (daemon/pipeline/router.h) alone, and the whole route around it, on user
// events of three sizes (~180 B as tools/gen_events.py makes them, ~1 KiB and ~15 KiB with more
// fields; all valid for the demo's user-events schema, which is open):
//   - Parse: RapidJSON's parse as the router calls it (iterative, strict UTF-8, pooled memory
//     recycled per message), nothing else
//   - Decode: the router's decode stage (pipeline::detail::decode): the size, NUL and
//     nesting-depth checks before the parse, the parse, and the duplicate-member check after it
//   - RouteNoSchema: Router::route for user-events without its schema: decode, key, id
//   - Route: Router::route for user-events as configured: decode, key, id, schema
//   - RouteDecodeError: Router::route of truncated JSON (the error route, reason included)
// Bytes/s are of message values; items/s are messages.
//   cmake --build build --target decode_bench && build/tests/bench/decode_bench
#include "daemon/pipeline/router.h"

#include "tests/bench/bench_support.h"
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace kpipe {
namespace {

using bench::die;
using bench::parseOrDie;
using bench::reportCounters;

const config::PipelineSpec& userEvents() { return bench::demoPipeline("user-events"); }

enum class Size { Small, Medium, Large };

// Valid user events; Medium and Large carry more (open-schema) fields at the top level.
std::vector<std::string> events(Size size, size_t n) {
  static constexpr const char* kTypes[] = {"user.signed_up", "user.updated", "user.deleted"};
  std::mt19937_64 rng(11);
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    char user[16];
    std::snprintf(user, sizeof user, "user-%05u", static_cast<unsigned>(rng() % 500));
    std::string event =
        "{\"msg_id\":\"" + bench::uuid(rng) + "\",\"user_id\":\"" + user + "\",\"type\":\"" +
        kTypes[rng() % 3] +
        "\",\"ts\":" + std::to_string(1'700'000'000'000 + rng() % 1'000'000'000) +
        ",\"data\":{\"email\":\"" + user +
        "@example.com\",\"plan\":\"pro\",\"age\":" + std::to_string(13 + rng() % 80) + "}";
    const int items = size == Size::Small ? 0 : size == Size::Medium ? 12 : 250;
    if (items > 0) {
      event += ",\"source\":{\"app\":\"web\",\"version\":\"4.2.1\",\"ip\":\"203.0.113.7\"}";
      event += ",\"items\":[";
      for (int k = 0; k < items; ++k) {
        event += std::string(k == 0 ? "" : ",") + "{\"sku\":\"SKU-" +
                 std::to_string(rng() % 99999) + "\",\"qty\":" + std::to_string(1 + rng() % 5) +
                 ",\"price\":" + std::to_string(rng() % 10000) + ".5,\"tags\":[\"a\",\"b\"]}";
      }
      event += "]";
    }
    out.push_back(event + "}");
  }
  return out;
}

constexpr size_t kMessages = 256;

void BM_Parse(benchmark::State& state, Size size) {
  const std::vector<std::string> messages = events(size, kMessages);
  pipeline::detail::PooledParser parser;
  for (auto _ : state) {
    for (const std::string& message : messages) {
      benchmark::DoNotOptimize(parseOrDie(parser, message).MemberCount());
    }
  }
  reportCounters(state, messages);
}

void BM_Decode(benchmark::State& state, Size size) {
  const std::vector<std::string> messages = events(size, kMessages);
  const size_t max_bytes = userEvents().max_message_bytes;
  pipeline::detail::PooledParser parser;
  pipeline::detail::DecodeFailure failure;
  for (auto _ : state) {
    for (const std::string& message : messages) {
      if (pipeline::detail::decode(parser, message.data(), message.size(), max_bytes, failure) ==
          nullptr) {
        state.SkipWithError(("refused: " + failure.reason).c_str());
        return;
      }
    }
  }
  reportCounters(state, messages);
}

void route(benchmark::State& state, const config::PipelineSpec& spec,
           const std::vector<std::string>& messages, pipeline::Route expected) {
  auto built = pipeline::Router::build(spec);
  if (auto* error = std::get_if<std::string>(&built)) die(*error);
  pipeline::Router& router = *std::get<std::unique_ptr<pipeline::Router>>(built);
  pipeline::Decision decision;
  for (auto _ : state) {
    for (const std::string& message : messages) {
      router.route(message.data(), message.size(), decision);
      if (decision.route != expected) {
        state.SkipWithError(("unexpected route: " + decision.reason).c_str());
        return;
      }
    }
  }
  reportCounters(state, messages);
}

void BM_RouteNoSchema(benchmark::State& state, Size size) {
  config::PipelineSpec spec = userEvents();
  spec.schema = {};
  route(state, spec, events(size, kMessages), pipeline::Route::Output);
}

void BM_Route(benchmark::State& state, Size size) {
  route(state, userEvents(), events(size, kMessages), pipeline::Route::Output);
}

void BM_RouteDecodeError(benchmark::State& state) {
  std::vector<std::string> messages = events(Size::Small, kMessages);
  for (auto& m : messages) m.resize(m.size() / 2);  // cut in the middle: not JSON
  route(state, userEvents(), messages, pipeline::Route::Error);
}

BENCHMARK_CAPTURE(BM_Parse, small, Size::Small);
BENCHMARK_CAPTURE(BM_Parse, medium, Size::Medium);
BENCHMARK_CAPTURE(BM_Parse, large, Size::Large);
BENCHMARK_CAPTURE(BM_Decode, small, Size::Small);
BENCHMARK_CAPTURE(BM_Decode, medium, Size::Medium);
BENCHMARK_CAPTURE(BM_Decode, large, Size::Large);
BENCHMARK_CAPTURE(BM_RouteNoSchema, small, Size::Small);
BENCHMARK_CAPTURE(BM_RouteNoSchema, medium, Size::Medium);
BENCHMARK_CAPTURE(BM_RouteNoSchema, large, Size::Large);
BENCHMARK_CAPTURE(BM_Route, small, Size::Small);
BENCHMARK_CAPTURE(BM_Route, medium, Size::Medium);
BENCHMARK_CAPTURE(BM_Route, large, Size::Large);
BENCHMARK(BM_RouteDecodeError);

}  // namespace
}  // namespace kpipe
