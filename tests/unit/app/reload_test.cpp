// reload.h: what a reload refuses, and which pipelines it restarts.
#include "daemon/app/reload.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace kpipe::app {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSchema =
    R"({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}})";

// A config directory written file by file, like an operator editing it.
class ConfigFiles {
 public:
  ConfigFiles() {
    dir_ = fs::temp_directory_path() /
           ("kpipe-reload-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "pipelines");
    fs::create_directories(dir_ / "schemas" / "a");
    fs::create_directories(dir_ / "schemas" / "b");
    write("kpipe.yaml",
          "kafka: {bootstrap: 127.0.0.1:9092}\npipelines: pipelines/\n"
          "stores: {ids: {type: memory, ttl: 1d}}\n");
    write("schemas/a/event.json", kSchema);
    write("schemas/b/event.json", kSchema);
    write("pipelines/a.yaml", pipeline("a", "out-a"));
    write("pipelines/b.yaml", pipeline("b", "out-b"));
  }
  ~ConfigFiles() { fs::remove_all(dir_); }

  static std::string pipeline(const std::string& name, const std::string& output) {
    return "name: " + name + "\ninput: {topic: in-" + name + ", group: g-" + name +
           "}\nkey: /id\nschema: schemas/" + name +
           "/event.json\ndedup: {id: /id, store: ids}\noutput: {topic: " + output + "}\n";
  }
  void write(const std::string& relative, const std::string& text) {
    std::ofstream(dir_ / relative) << text;
  }
  fs::path file() const { return dir_ / "kpipe.yaml"; }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

LoadedConfig loaded(const Candidate& candidate) {
  EXPECT_TRUE(candidate.loaded) << (candidate.errors.empty() ? "" : candidate.errors.front());
  return *candidate.loaded;
}

std::string all(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += line + "\n";
  return out;
}

TEST(Reload, NothingChangedRestartsNothing) {
  ConfigFiles files;
  LoadedConfig running = loaded(prepare(files.file(), nullptr));
  // Comments and layout are not changes.
  files.write("pipelines/a.yaml", "# a comment\n" + ConfigFiles::pipeline("a", "out-a") + "\n\n");
  ReloadPlan plan = app::plan(running, loaded(prepare(files.file(), &running)));
  EXPECT_TRUE(plan.nothing());
  EXPECT_EQ(plan.unchanged, (std::vector<std::string>{"a", "b"}));
}

TEST(Reload, AChangedFileRestartsOnlyItsPipeline) {
  ConfigFiles files;
  LoadedConfig running = loaded(prepare(files.file(), nullptr));
  files.write("pipelines/a.yaml", ConfigFiles::pipeline("a", "out-a2"));
  ReloadPlan plan = app::plan(running, loaded(prepare(files.file(), &running)));
  EXPECT_EQ(plan.changed, std::vector<std::string>{"a"});
  EXPECT_EQ(plan.unchanged, std::vector<std::string>{"b"});
  EXPECT_TRUE(plan.added.empty());
  EXPECT_TRUE(plan.removed.empty());
}

TEST(Reload, AGrownSchemaRestartsItsPipeline) {
  ConfigFiles files;
  LoadedConfig running = loaded(prepare(files.file(), nullptr));
  files.write("schemas/b/event.json",
              R"({"type": "object", "required": ["id"],
                  "properties": {"id": {"type": "string"}, "note": {"type": "string"}}})");
  ReloadPlan plan = app::plan(running, loaded(prepare(files.file(), &running)));
  EXPECT_EQ(plan.changed, std::vector<std::string>{"b"});
  EXPECT_EQ(plan.unchanged, std::vector<std::string>{"a"});
}

TEST(Reload, ANarrowedSchemaIsRefusedAgainstTheSnapshot) {
  ConfigFiles files;
  LoadedConfig running = loaded(prepare(files.file(), nullptr));
  // The file on disk is overwritten: the comparison must use what the running config read.
  files.write("schemas/a/event.json",
              R"({"type": "object", "required": ["id", "ts"],
                  "properties": {"id": {"type": "string"}, "ts": {"type": "integer"}}})");
  Candidate next = prepare(files.file(), &running);
  ASSERT_FALSE(next.loaded);
  EXPECT_NE(all(next.errors).find("ts"), std::string::npos) << all(next.errors);
  EXPECT_NE(all(next.errors).find("pipeline a"), std::string::npos) << all(next.errors);
  // Opted out: the same change is taken.
  files.write("pipelines/a.yaml", ConfigFiles::pipeline("a", "out-a") + "schema_evolution: any\n");
  EXPECT_TRUE(prepare(files.file(), &running).loaded);
}

TEST(Reload, AddedAndRemovedPipelines) {
  ConfigFiles files;
  LoadedConfig running = loaded(prepare(files.file(), nullptr));
  fs::remove(files.dir() / "pipelines" / "b.yaml");
  fs::create_directories(files.dir() / "schemas" / "c");
  files.write("schemas/c/event.json", kSchema);
  files.write("pipelines/c.yaml", ConfigFiles::pipeline("c", "out-c"));
  ReloadPlan plan = app::plan(running, loaded(prepare(files.file(), &running)));
  EXPECT_EQ(plan.added, std::vector<std::string>{"c"});
  EXPECT_EQ(plan.removed, std::vector<std::string>{"b"});
  EXPECT_EQ(plan.unchanged, std::vector<std::string>{"a"});
}

TEST(Reload, TheKafkaSectionOrAStoreRestartsThoseWhoUseIt) {
  ConfigFiles files;
  LoadedConfig running = loaded(prepare(files.file(), nullptr));
  files.write("kpipe.yaml",
              "kafka: {bootstrap: 127.0.0.1:9092}\npipelines: pipelines/\n"
              "stores: {ids: {type: memory, ttl: 2d}}\n");
  ReloadPlan plan = app::plan(running, loaded(prepare(files.file(), &running)));
  EXPECT_EQ(plan.changed, (std::vector<std::string>{"a", "b"}));
  files.write("kpipe.yaml",
              "kafka: {bootstrap: 127.0.0.1:9093}\npipelines: pipelines/\n"
              "stores: {ids: {type: memory, ttl: 1d}}\nhttp: {listen: 127.0.0.1:9999}\n");
  plan = app::plan(running, loaded(prepare(files.file(), &running)));
  EXPECT_EQ(plan.changed, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(plan.need_restart, std::vector<std::string>{"http.listen"});
}

TEST(Reload, ErrorsKeepTheRunningConfigAndSayWhere) {
  ConfigFiles files;
  LoadedConfig running = loaded(prepare(files.file(), nullptr));
  files.write("pipelines/a.yaml", ConfigFiles::pipeline("a", "out-a") + "concurency: 3\n");
  files.write("schemas/b/event.json", R"({"type": "object", "properties": {"id": {"type": 7}}})");
  Candidate next = prepare(files.file(), &running);
  ASSERT_FALSE(next.loaded);
  const std::string errors = all(next.errors);
  EXPECT_NE(errors.find("a.yaml:7:1"), std::string::npos) << errors;
  EXPECT_NE(errors.find("concurrency"), std::string::npos) << errors;  // did you mean
  // Switching to the embedded broker is not something a running daemon can do.
  files.write("pipelines/a.yaml", ConfigFiles::pipeline("a", "out-a"));
  files.write("schemas/b/event.json", kSchema);
  files.write("kpipe.yaml",
              "kafka: {bootstrap: embedded}\npipelines: pipelines/\n"
              "stores: {ids: {type: memory, ttl: 1d}}\n");
  next = prepare(files.file(), &running);
  ASSERT_FALSE(next.loaded);
  EXPECT_NE(all(next.errors).find("needs a restart"), std::string::npos) << all(next.errors);
}

}  // namespace
}  // namespace kpipe::app
