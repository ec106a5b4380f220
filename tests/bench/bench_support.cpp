#include "tests/bench/bench_support.h"

#include "daemon/config/loader.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>

namespace kpipe::bench {

namespace fs = std::filesystem;

fs::path sourceDir() {
  const char* dir = std::getenv("KPIPE_SOURCE_DIR");
  // tests/bench/ is two levels below the root.
  return dir != nullptr ? fs::path(dir)
                        : fs::path(__FILE__).parent_path().parent_path().parent_path();
}

void die(const std::string& why) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, why.c_str());
  std::exit(1);
}

const config::PipelineSpec& demoPipeline(const std::string& name) {
  static const config::Config config = [] {
    const fs::path file = sourceDir() / "config" / "kpipe.yaml";
    config::LoadResult loaded = config::loadConfig(file, [](std::string_view) {
      return std::nullopt;  // the defaults of kpipe.yaml
    });
    if (!loaded.ok()) die(file.string() + ": " + loaded.errors.front().str());
    return std::move(*loaded.config);
  }();
  for (const config::PipelineSpec& p : config.pipelines) {
    if (p.name == name) return p;
  }
  die("no pipeline " + name + " in config/");
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

const rapidjson::Value& parseOrDie(pipeline::detail::PooledParser& parser, std::string_view text) {
  const auto& document = parser.parse(text.data(), text.size());
  if (document.HasParseError()) die("not JSON: " + std::string(text));
  return document;
}

void reportCounters(benchmark::State& state, const std::vector<std::string>& messages) {
  size_t bytes = 0;
  for (const auto& m : messages) bytes += m.size();
  const auto rounds = static_cast<int64_t>(state.iterations());
  state.SetItemsProcessed(rounds * static_cast<int64_t>(messages.size()));
  state.SetBytesProcessed(rounds * static_cast<int64_t>(bytes));
  state.counters["avg_msg_bytes"] =
      static_cast<double>(bytes) / static_cast<double>(messages.size());
}

}  // namespace kpipe::bench
