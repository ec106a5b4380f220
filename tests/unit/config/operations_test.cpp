// shutdown: {drain_timeout} and reload: {watch, debounce} in kpipe.yaml.

#include "daemon/config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace kpipe::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::ElementsAre;

class OperationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("kpipe_operations_" + std::string(test->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "pipelines");
  }
  void TearDown() override { fs::remove_all(dir_); }

  LoadResult load(std::string_view main) {
    if (!main.empty() && main.front() == '\n') main.remove_prefix(1);
    std::ofstream(dir_ / "kpipe.yaml", std::ios::binary) << main;
    return loadConfig(dir_ / "kpipe.yaml", [](std::string_view) { return std::nullopt; });
  }

  std::vector<std::string> errors(std::string_view main) {
    LoadResult result = load(main);
    EXPECT_FALSE(result.ok());
    std::vector<std::string> out;
    for (const ConfigError& error : result.errors) {
      std::string text = error.str();
      text.replace(0, dir_.string().size() + 1, "@/");
      out.push_back(text);
    }
    return out;
  }

  fs::path dir_;
};

TEST_F(OperationsTest, Defaults) {
  LoadResult result = load("");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.config->drain_timeout, 30s);
  EXPECT_TRUE(result.config->reload_watch);
  EXPECT_EQ(result.config->reload_debounce, 200ms);
}

TEST_F(OperationsTest, EmptySectionsKeepTheDefaults) {
  LoadResult result = load("shutdown:\nreload: {}\n");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.config->drain_timeout, 30s);
  EXPECT_TRUE(result.config->reload_watch);
  EXPECT_EQ(result.config->reload_debounce, 200ms);
}

TEST_F(OperationsTest, ReadsEveryField) {
  LoadResult result = load(R"(
shutdown: {drain_timeout: 2m}
reload: {watch: false, debounce: 1500ms}
)");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.config->drain_timeout, 2min);
  EXPECT_FALSE(result.config->reload_watch);
  EXPECT_EQ(result.config->reload_debounce, 1500ms);
}

TEST_F(OperationsTest, Bounds) {
  LoadResult low = load("shutdown: {drain_timeout: 1ms}\nreload: {debounce: 0ms}\n");
  ASSERT_TRUE(low.ok());
  EXPECT_EQ(low.config->drain_timeout, 1ms);
  EXPECT_EQ(low.config->reload_debounce, 0ms);
  LoadResult high = load("shutdown: {drain_timeout: 10m}\nreload: {debounce: 10s}\n");
  ASSERT_TRUE(high.ok());
  EXPECT_EQ(high.config->drain_timeout, 10min);
  EXPECT_EQ(high.config->reload_debounce, 10s);
}

TEST_F(OperationsTest, OutOfBoundsAndMalformedValuesAreReportedAtTheValue) {
  EXPECT_THAT(errors(R"(
shutdown: {drain_timeout: 0s}
reload: {watch: yes, debounce: 11s}
)"),
              ElementsAre("@/kpipe.yaml:1:27: shutdown.drain_timeout: \"0s\" is too short (must be "
                          "at least 1ms)",
                          "@/kpipe.yaml:2:17: reload.watch: \"yes\" is not a boolean (use true or "
                          "false)",
                          "@/kpipe.yaml:2:32: reload.debounce: \"11s\" is too long (must be at "
                          "most 10s)"));
  EXPECT_THAT(errors("shutdown: {drain_timeout: 601s, drain: 1s}\nreload: {debounce: soon}\n"),
              ElementsAre("@/kpipe.yaml:1:27: shutdown.drain_timeout: \"601s\" is too long (must "
                          "be at most 10m)",
                          "@/kpipe.yaml:1:33: shutdown.drain: unknown key \"drain\" (expected one "
                          "of: drain_timeout)",
                          "@/kpipe.yaml:2:20: reload.debounce: \"soon\" is not a duration (use "
                          "e.g. 250ms, 30s, 5m, 2h, 7d)"));
}

TEST_F(OperationsTest, SectionsMustBeMaps) {
  EXPECT_THAT(errors("shutdown: 30s\n"),
              ElementsAre("@/kpipe.yaml:1:11: shutdown: expected a map, got the string \"30s\""));
}

TEST_F(OperationsTest, TopLevelKeySuggestion) {
  EXPECT_THAT(errors("reloads: {watch: false}\n"),
              ElementsAre("@/kpipe.yaml:1:1: reloads: unknown key \"reloads\" (did you mean "
                          "\"reload\"?)"));
}

}  // namespace
}  // namespace kpipe::config
