// Inputs tests/fuzz/config_fuzz found to hang the config loader, kept as regressions (their
// bytes are also in tests/fuzz/corpus/config_fuzz/regression_*).

#include "daemon/config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace kpipe::config {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

class ConfigFuzzRegressionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("kpipe_config_fuzz_" + std::string(test->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "pipelines");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& relative, std::string_view text) {
    std::ofstream(dir_ / relative, std::ios::binary) << text;
  }

  // The errors of loading kpipe.yaml, the test directory shortened to "@/"; fails the test when
  // loading takes more than a few seconds (the bug was a loop without end).
  std::vector<std::string> errors() {
    const auto start = std::chrono::steady_clock::now();
    LoadResult result =
        loadConfig(dir_ / "kpipe.yaml", [](std::string_view) { return std::nullopt; });
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    std::vector<std::string> out;
    for (const ConfigError& error : result.errors) {
      std::string text = error.str();
      const std::string prefix = dir_.string() + "/";
      if (text.starts_with(prefix)) text.replace(0, prefix.size(), "@/");
      out.push_back(text);
    }
    return out;
  }

  fs::path dir_;
};

// yaml-cpp 0.7's LoadAll never returns on a document that starts with a stray ",": its parser
// hands out the same empty document forever without consuming the comma, and LoadAll keeps
// every one of them (jbeder/yaml-cpp#1040). A one-byte pipeline file hung `kpipe check` and a
// reload while memory filled up.
TEST_F(ConfigFuzzRegressionTest, StrayCommaInAPipelineFileIsASyntaxError) {
  write("kpipe.yaml", "");
  write("pipelines/p.yaml", ",");
  EXPECT_THAT(errors(), ElementsAre("@/pipelines/p.yaml:1:1: YAML syntax error: unexpected \",\""));
}

TEST_F(ConfigFuzzRegressionTest, StrayCommaAfterADocumentIsASyntaxError) {
  write("kpipe.yaml", "kafka: {}\n---\n, x\n");
  EXPECT_THAT(errors(), ElementsAre("@/kpipe.yaml:3:1: YAML syntax error: unexpected \",\""));
}

TEST_F(ConfigFuzzRegressionTest, CommaInsideAMapIsStillYamlCppsOwnError) {
  write("kpipe.yaml", "kafka: {}\n,\n");
  EXPECT_THAT(errors(), ElementsAre("@/kpipe.yaml:2:1: YAML syntax error: end of map not found"));
}

TEST_F(ConfigFuzzRegressionTest, DocumentsAreStillCounted) {
  write("kpipe.yaml", "kafka: {}\n---\nhttp: {}\n---\nlog: {}\n");
  EXPECT_THAT(errors(), ElementsAre("@/kpipe.yaml:3:1: found 3 YAML documents (\"---\"); a "
                                    "config file holds exactly one"));
}

}  // namespace
}  // namespace kpipe::config
