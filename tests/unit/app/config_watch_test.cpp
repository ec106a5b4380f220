// config_watch.h against the real inotify: bursts are one callback, editors' files are ignored,
// renames over a file count.
#include "daemon/app/config_watch.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace kpipe::app {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ConfigWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kpipe-watch-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  // Runs the io_context for `time` (at most), counting callbacks.
  void runFor(std::chrono::milliseconds time) {
    io_.restart();
    io_.run_for(time);
  }

  fs::path dir_;
  boost::asio::io_context io_;
  int calls_ = 0;
};

TEST_F(ConfigWatchTest, ABurstOfChangesIsOneCallbackAfterTheQuietPeriod) {
  ConfigWatch watch(io_, 100ms, [&](auto) { ++calls_; });
  ASSERT_FALSE(watch.watch({dir_}));
  for (int i = 0; i < 5; ++i) {
    write("kpipe.yaml", "x: " + std::to_string(i));
    runFor(20ms);
  }
  EXPECT_EQ(calls_, 0);  // still changing
  runFor(300ms);
  EXPECT_EQ(calls_, 1);
}

TEST_F(ConfigWatchTest, ARenameOverTheFileCounts) {
  write("a.yaml", "old");
  ConfigWatch watch(io_, 10ms, [&](auto) { ++calls_; });
  ASSERT_FALSE(watch.watch({dir_}));
  write(".a.yaml.tmp", "new");  // ignored itself
  runFor(100ms);
  EXPECT_EQ(calls_, 0);
  fs::rename(dir_ / ".a.yaml.tmp", dir_ / "a.yaml");
  runFor(200ms);
  EXPECT_EQ(calls_, 1);
}

TEST_F(ConfigWatchTest, EditorFilesAreIgnored) {
  for (const char* name : {".a.yaml.swp", ".a.yaml.swx", "a.yaml~", "4913", "#a.yaml#", ".#a.yaml",
                           "x.tmp", ".a.yaml.kate-swp"}) {
    EXPECT_TRUE(ConfigWatch::ignored(name)) << name;
  }
  for (const char* name : {"a.yaml", "kpipe.yaml", "..data", "event.json"}) {
    EXPECT_FALSE(ConfigWatch::ignored(name)) << name;
  }
  ConfigWatch watch(io_, 10ms, [&](auto) { ++calls_; });
  ASSERT_FALSE(watch.watch({dir_}));
  write(".a.yaml.swp", "vim");
  write("a.yaml~", "backup");
  fs::remove(dir_ / ".a.yaml.swp");
  runFor(200ms);
  EXPECT_EQ(calls_, 0);
}

TEST_F(ConfigWatchTest, WatchesFollowTheGivenDirectories) {
  fs::create_directories(dir_ / "schemas");
  ConfigWatch watch(io_, 10ms, [&](auto) { ++calls_; });
  ASSERT_FALSE(watch.watch({dir_}));
  write("schemas/a.json", "{}");  // not watched yet
  runFor(100ms);
  EXPECT_EQ(calls_, 0);
  ASSERT_FALSE(watch.watch({dir_ / "schemas"}));
  write("schemas/a.json", "{\"type\": \"object\"}");
  runFor(200ms);
  EXPECT_EQ(calls_, 1);
  write("kpipe.yaml", "no longer watched");
  runFor(100ms);
  EXPECT_EQ(calls_, 1);
}

TEST_F(ConfigWatchTest, AMissingDirectoryIsSkipped) {
  ConfigWatch watch(io_, 10ms, [&](auto) { ++calls_; });
  EXPECT_FALSE(watch.watch({dir_ / "missing", dir_}));
  write("kpipe.yaml", "x");
  runFor(200ms);
  EXPECT_EQ(calls_, 1);
}

}  // namespace
}  // namespace kpipe::app
