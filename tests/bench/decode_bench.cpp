// The decode stage (daemon/pipeline/router.h) alone, and the whole route around it, on user
// events of three sizes (~180 B as tools/gen_events.py makes them, ~1 KiB and ~15 KiB with more
// fields; all valid for the demo's user-events schema, which is open):
//   - Parse: RapidJSON's parse as the router calls it (iterative, strict UTF-8, pooled memory
//     recycled per message), nothing else
//   - Decode: the router's decode stage: the NUL and nesting-depth scans before the parse, the
//     parse, and the duplicate-member check after it
//   - RouteNoSchema: Router::route for user-events without its schema: decode, key, id
//   - Route: Router::route for user-events as configured: decode, key, id, schema
//   - RouteDecodeError: Router::route of truncated JSON (the error route, reason included)
// Bytes/s are of message values; items/s are messages.
//   cmake --build build --target decode_bench && build/tests/bench/decode_bench
#include "daemon/config/loader.h"
#include "daemon/pipeline/router.h"
#include "daemon/schema/rapidjson.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace kpipe {
namespace {

namespace fs = std::filesystem;

fs::path sourceDir() {
  const char* dir = std::getenv("KPIPE_SOURCE_DIR");
  return dir != nullptr ? fs::path(dir)
                        : fs::path(__FILE__).parent_path().parent_path().parent_path();
}

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "decode_bench: %s\n", why.c_str());
  std::exit(1);
}

const config::PipelineSpec& userEvents() {
  static const config::PipelineSpec spec = [] {
    const fs::path file = sourceDir() / "config" / "kpipe.yaml";
    config::LoadResult loaded =
        config::loadConfig(file, [](std::string_view) { return std::nullopt; });
    if (!loaded.ok()) die(file.string() + ": " + loaded.errors.front().str());
    for (const config::PipelineSpec& p : loaded.config->pipelines) {
      if (p.name == "user-events") return p;
    }
    die("no pipeline user-events in config/");
  }();
  return spec;
}

std::string uuid(std::mt19937_64& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out += '-';
    out += kHex[rng() & 15];
  }
  return out;
}

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
        "{\"msg_id\":\"" + uuid(rng) + "\",\"user_id\":\"" + user + "\",\"type\":\"" +
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

void reportCounters(benchmark::State& state, const std::vector<std::string>& messages) {
  size_t bytes = 0;
  for (const auto& m : messages) bytes += m.size();
  const auto rounds = static_cast<int64_t>(state.iterations());
  state.SetItemsProcessed(rounds * static_cast<int64_t>(messages.size()));
  state.SetBytesProcessed(rounds * static_cast<int64_t>(bytes));
  state.counters["avg_msg_bytes"] =
      static_cast<double>(bytes) / static_cast<double>(messages.size());
}

// The router's parse: pooled allocators recycled per message, iterative, strict UTF-8
// (router.cpp: kParseBufferBytes, kStackBufferBytes, kParseFlags).
class Parser {
 public:
  Parser()
      : buffer_(size_t{64} << 10),
        stack_buffer_(size_t{16} << 10),
        allocator_(buffer_.data(), buffer_.size()),
        stack_allocator_(stack_buffer_.data(), stack_buffer_.size()),
        document_(&allocator_, 1024, &stack_allocator_) {}

  const rapidjson::Value& parse(std::string_view text) {
    allocator_.Clear();
    stack_allocator_.Clear();
    document_.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(
        text.data(), text.size());
    if (document_.HasParseError()) die("not JSON: " + std::string(text));
    return document_;
  }

 private:
  std::vector<char> buffer_;
  std::vector<char> stack_buffer_;
  rapidjson::MemoryPoolAllocator<> allocator_;
  rapidjson::MemoryPoolAllocator<> stack_allocator_;
  rapidjson::GenericDocument<rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>,
                             rapidjson::MemoryPoolAllocator<>>
      document_;
};

void BM_Parse(benchmark::State& state, Size size) {
  const std::vector<std::string> messages = events(size, kMessages);
  Parser parser;
  for (auto _ : state) {
    for (const std::string& message : messages) {
      benchmark::DoNotOptimize(parser.parse(message).MemberCount());
    }
  }
  reportCounters(state, messages);
}

void BM_Decode(benchmark::State& state, Size size) {
  const std::vector<std::string> messages = events(size, kMessages);
  Parser parser;
  for (auto _ : state) {
    for (const std::string& message : messages) {
      if (std::memchr(message.data(), '\0', message.size()) != nullptr ||
          pipeline::detail::nestsDeeperThan(message.data(), message.size(), 128)) {
        state.SkipWithError("refused before the parse");
        return;
      }
      const rapidjson::Value& document = parser.parse(message);
      if (!document.IsObject() || pipeline::detail::duplicateMember(document)) {
        state.SkipWithError("refused after the parse");
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

// How this file was compiled, in the benchmark's context lines (libbenchmark's own "built as
// DEBUG" warning is about Debian's build of the library, not about this code).
const bool kBuildContext = [] {
#if defined(__OPTIMIZE__) && defined(NDEBUG)
  benchmark::AddCustomContext("kpipe_build", "optimized, NDEBUG (CMake RelWithDebInfo or Release)");
#else
  benchmark::AddCustomContext("kpipe_build",
                              "NOT optimized or with asserts (Debug): not representative");
#endif
  return true;
}();

}  // namespace
}  // namespace kpipe

BENCHMARK_MAIN();
