// libFuzzer target: the config loader (daemon/config), config::loadConfig on fuzzed files.
//
// Input: KPIPE_YAML NUL PIPELINE_YAML. They are written, once per input, to a scratch config
// directory laid out as the demo's (made once per process):
//   config/kpipe.yaml  config/pipelines/fuzz.yaml  schemas/ (a copy of the demo schemas)
// so `schema: ../schemas/user-event.json` resolves. Without a NUL there is no pipeline file.
// Environment variables come from a fixed table, not from the process.
//
// Invariants: loadConfig never throws; it returns a config exactly when it reports no error;
// every error names a file and has a message.

#include "daemon/config/loader.h"

#include "tests/fuzz/fuzz_util.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace kpipe;

struct Layout {
  fs::path kpipe_yaml;
  fs::path pipeline_yaml;
};

const Layout& layout() {
  static const Layout paths = [] {
    const fs::path& root = fuzz::scratchDir();
    fs::create_directories(root / "config" / "pipelines");
    fuzz::copyDemoSchemas(root);
    return Layout{root / "config" / "kpipe.yaml", root / "config" / "pipelines" / "fuzz.yaml"};
  }();
  return paths;
}

std::optional<std::string> environment(std::string_view name) {
  if (name == "KPIPE_HTTP_LISTEN") return "127.0.0.1:9464";
  if (name == "KPIPE_LOG_FORMAT") return "json";
  if (name == "EMPTY") return "";
  if (name == "MULTILINE") return "line one\nline two";
  if (name == "SECRET") return "s3cr3t";
  return std::nullopt;  // KPIPE_BOOTSTRAP and the rest: unset
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string_view> parts = fuzz::splitAtNul(input, 2);
  const Layout& files = layout();
  fuzz::writeFile(files.kpipe_yaml, parts[0]);
  std::error_code ec;
  fs::remove(files.pipeline_yaml, ec);
  if (parts.size() > 1) fuzz::writeFile(files.pipeline_yaml, parts[1]);

  const config::LoadResult result = config::loadConfig(files.kpipe_yaml, environment);
  if (result.ok() != result.errors.empty()) fuzz::fail("a config with errors, or neither");
  for (const config::ConfigError& error : result.errors) {
    const std::string text = error.str();
    if (error.message.empty()) fuzz::fail("an error without a message: " + text);
    // Usually one of the two files; `pipelines:` may name another directory.
    if (error.where.file.empty()) fuzz::fail("an error without a file: " + text);
  }
  if (result.config) {
    for (const config::PipelineSpec& pipeline : result.config->pipelines) {
      if (pipeline.name.empty() || pipeline.input.topic.empty() || pipeline.errors.topic.empty())
        fuzz::fail("a loaded pipeline without name, input topic or error topic");
      if (pipeline.max_pending < pipeline.concurrency)
        fuzz::fail("max_pending below concurrency in pipeline " + pipeline.name);
    }
  }
  return 0;
}
