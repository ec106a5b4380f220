// schema_evolution.h: which changes of a pipeline's schemas `kpipe check --against` and a reload
// refuse, and how each is named.

#include "daemon/app/schema_evolution.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kpipe::app {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr std::string_view kUserEvent = R"({
  "type": "object",
  "required": ["id"],
  "properties": {
    "id": {"type": "string"},
    "ts": {"type": "integer", "minimum": 0},
    "plan": {"enum": ["free", "pro"]}
  }
})";

// Two config directories side by side, old/ and new/, each with its schemas/.
class SchemaEvolutionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kpipe-schema-evolution-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "old" / "schemas");
    fs::create_directories(dir_ / "new" / "schemas");
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& relative, std::string_view text) {
    const fs::path file = dir_ / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

  config::Config configIn(const std::string& side) const {
    config::Config config;
    config.base_dir = dir_ / side;
    config.file = config.base_dir / "kpipe.yaml";
    config.pipelines_dir = config.base_dir / "pipelines";
    return config;
  }

  // A pipeline of `side` whose one schema is schemas/`schema`.
  config::PipelineSpec pipeline(const std::string& side, const std::string& name,
                                const std::string& schema) const {
    config::PipelineSpec p;
    p.name = name;
    p.where.file = (dir_ / side / "pipelines" / (name + ".yaml")).string();
    p.schema.file = dir_ / side / "schemas" / schema;
    return p;
  }

  // The same, with one schema per event type (type -> file under schemas/).
  config::PipelineSpec perType(const std::string& side, const std::string& name,
                               const std::map<std::string, std::string>& types,
                               config::SchemaSpec::UnknownType unknown) const {
    config::PipelineSpec p = pipeline(side, name, "unused.json");
    p.schema.file.reset();
    p.schema.type_field = "/type";
    for (const auto& [type, file] : types) p.schema.types[type] = dir_ / side / "schemas" / file;
    p.schema.unknown_type = unknown;
    return p;
  }

  // "PIPELINE_FILE: pipeline NAME, schema FILE: at ..." with the test directory as "@/".
  std::vector<std::string> check(const config::Config& previous, const config::Config& current,
                                 const SchemaFiles* previous_files = nullptr,
                                 const SchemaFiles* current_files = nullptr) const {
    std::vector<std::string> lines =
        checkSchemaEvolution(previous, current, previous_files, current_files);
    for (std::string& line : lines) {
      const std::string prefix = dir_.string() + "/";
      for (size_t at = line.find(prefix); at != std::string::npos; at = line.find(prefix)) {
        line.replace(at, prefix.size(), "@/");
      }
    }
    return lines;
  }

  // Old and new configs with one pipeline "users" and the given versions of its schema.
  std::vector<std::string> change(std::string_view before, std::string_view after,
                                  config::PipelineSpec::SchemaEvolution evolution =
                                      config::PipelineSpec::SchemaEvolution::GrowthOnly) {
    write("old/schemas/user-event.json", before);
    write("new/schemas/user-event.json", after);
    config::Config previous = configIn("old");
    previous.pipelines.push_back(pipeline("old", "users", "user-event.json"));
    config::Config current = configIn("new");
    current.pipelines.push_back(pipeline("new", "users", "user-event.json"));
    current.pipelines.back().schema_evolution = evolution;
    return check(previous, current);
  }

  fs::path dir_;
};

TEST_F(SchemaEvolutionTest, UnchangedSchema) {
  EXPECT_THAT(change(kUserEvent, kUserEvent), IsEmpty());
}

TEST_F(SchemaEvolutionTest, SameFileOfTheSameConfig) {
  write("new/schemas/user-event.json", kUserEvent);
  config::Config config = configIn("new");
  config.pipelines.push_back(pipeline("new", "users", "user-event.json"));
  EXPECT_THAT(check(config, config), IsEmpty());
}

TEST_F(SchemaEvolutionTest, GrowthIsCompatible) {
  // A new optional property, a type widened, an enum value added, a bound relaxed, a
  // requirement dropped.
  EXPECT_THAT(change(kUserEvent, R"({
    "type": "object",
    "properties": {
      "id": {"type": ["string", "null"]},
      "ts": {"type": "integer", "minimum": -10},
      "plan": {"enum": ["free", "pro", "team"]},
      "locale": {"type": "string"}
    }
  })"),
              IsEmpty());
}

TEST_F(SchemaEvolutionTest, IncompatibleChangesNameTheRuleAndThePointer) {
  EXPECT_THAT(
      change(kUserEvent, R"({
    "type": "object",
    "required": ["id", "locale"],
    "additionalProperties": false,
    "properties": {
      "id": {"type": "string"},
      "ts": {"type": "integer", "minimum": 1000},
      "plan": {"enum": ["free", "pro"]},
      "locale": {"type": "string"}
    }
  })"),
      ElementsAre("@/new/pipelines/users.yaml: pipeline users, schema schemas/user-event.json: "
                  "at /required: \"locale\" is newly required",
                  "@/new/pipelines/users.yaml: pipeline users, schema schemas/user-event.json: "
                  "at /properties/ts/minimum: raised from 0 to 1000",
                  "@/new/pipelines/users.yaml: pipeline users, schema schemas/user-event.json: "
                  "at /: additionalProperties false closes an open schema"));
}

TEST_F(SchemaEvolutionTest, ANarrowedEnumIsRefused) {
  const std::vector<std::string> lines = change(kUserEvent, R"({
    "type": "object", "required": ["id"],
    "properties": {"id": {"type": "string"}, "ts": {"type": "integer", "minimum": 0},
                   "plan": {"enum": ["pro"]}}
  })");
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_THAT(lines[0], HasSubstr(": at /properties/plan/enum: "));
  EXPECT_THAT(lines[0], HasSubstr("\"free\""));
}

TEST_F(SchemaEvolutionTest, OptOutWithSchemaEvolutionAny) {
  EXPECT_THAT(change(kUserEvent, R"({"type": "object", "required": ["id", "locale"]})",
                     config::PipelineSpec::SchemaEvolution::Any),
              IsEmpty());
}

TEST_F(SchemaEvolutionTest, ANewPipelineIsNotCompared) {
  write("new/schemas/strict.json", R"({"type": "object", "required": ["a", "b"]})");
  config::Config previous = configIn("old");
  config::Config current = configIn("new");
  current.pipelines.push_back(pipeline("new", "fresh", "strict.json"));
  EXPECT_THAT(check(previous, current), IsEmpty());
}

TEST_F(SchemaEvolutionTest, ARemovedPipelineIsNotAnError) {
  write("old/schemas/user-event.json", kUserEvent);
  config::Config previous = configIn("old");
  previous.pipelines.push_back(pipeline("old", "users", "user-event.json"));
  EXPECT_THAT(check(previous, configIn("new")), IsEmpty());
}

TEST_F(SchemaEvolutionTest, PipelinesAreMatchedByNameNotByFile) {
  write("old/schemas/a.json", R"({"type": "object"})");
  write("new/schemas/b.json", R"({"type": "object", "required": ["x"]})");
  config::Config previous = configIn("old");
  previous.pipelines.push_back(pipeline("old", "users", "a.json"));
  config::Config current = configIn("new");
  current.pipelines.push_back(pipeline("new", "users", "b.json"));
  current.pipelines.push_back(pipeline("new", "others", "b.json"));  // new: not compared
  EXPECT_THAT(check(previous, current),
              ElementsAre("@/new/pipelines/users.yaml: pipeline users, schema schemas/b.json: "
                          "at /required: \"x\" is newly required"));
}

TEST_F(SchemaEvolutionTest, PerTypeSchemasAreComparedTypeByType) {
  using Unknown = config::SchemaSpec::UnknownType;
  write("old/schemas/a.json", R"({"type": "object", "properties": {"n": {"maximum": 10}}})");
  write("old/schemas/b.json", R"({"type": "object"})");
  write("new/schemas/a.json", R"({"type": "object", "properties": {"n": {"maximum": 20}}})");
  write("new/schemas/b.json", R"({"type": "object", "required": ["ref"]})");
  config::Config previous = configIn("old");
  previous.pipelines.push_back(
      perType("old", "payments", {{"a", "a.json"}, {"b", "b.json"}}, Unknown::Error));
  config::Config current = configIn("new");
  current.pipelines.push_back(
      perType("new", "payments", {{"a", "a.json"}, {"b", "b.json"}}, Unknown::Error));
  EXPECT_THAT(check(previous, current),
              ElementsAre("@/new/pipelines/payments.yaml: pipeline payments, schema "
                          "schemas/b.json: at /required: \"ref\" is newly required"));
}

TEST_F(SchemaEvolutionTest, ADroppedTypeUnderUnknownTypeErrorIsRefused) {
  using Unknown = config::SchemaSpec::UnknownType;
  write("old/schemas/a.json", R"({"type": "object"})");
  write("old/schemas/b.json", R"({"type": "object"})");
  write("new/schemas/a.json", R"({"type": "object"})");
  config::Config previous = configIn("old");
  previous.pipelines.push_back(
      perType("old", "payments", {{"a", "a.json"}, {"b", "b.json"}}, Unknown::Error));
  config::Config current = configIn("new");
  current.pipelines.push_back(perType("new", "payments", {{"a", "a.json"}}, Unknown::Error));
  EXPECT_THAT(check(previous, current),
              ElementsAre("@/new/pipelines/payments.yaml: pipeline payments: event type \"b\" "
                          "is no longer listed: rejected now (unknown_type: error), accepted "
                          "before"));

  // Under unknown_type: pass the dropped type is accepted as it comes: growth.
  current.pipelines.back().schema.unknown_type = Unknown::Pass;
  EXPECT_THAT(check(previous, current), IsEmpty());
}

TEST_F(SchemaEvolutionTest, ANewTypeOnceAcceptedByPassIsComparedWithAnything) {
  using Unknown = config::SchemaSpec::UnknownType;
  write("old/schemas/a.json", R"({"type": "object"})");
  write("new/schemas/a.json", R"({"type": "object"})");
  write("new/schemas/c.json", R"({"type": "object", "required": ["amount"]})");
  config::Config previous = configIn("old");
  previous.pipelines.push_back(perType("old", "payments", {{"a", "a.json"}}, Unknown::Pass));
  config::Config current = configIn("new");
  current.pipelines.push_back(
      perType("new", "payments", {{"a", "a.json"}, {"c", "c.json"}}, Unknown::Pass));
  // Messages of type c passed before: anything c's schema refuses is refused now.
  EXPECT_THAT(check(previous, current),
              ElementsAre("@/new/pipelines/payments.yaml: pipeline payments, schema "
                          "schemas/c.json: at /: type narrowed from any type to \"object\"",
                          "@/new/pipelines/payments.yaml: pipeline payments, schema "
                          "schemas/c.json: at /required: \"amount\" is newly required"));
}

TEST_F(SchemaEvolutionTest, FromOneSchemaToPerTypeSchemas) {
  using Unknown = config::SchemaSpec::UnknownType;
  write("old/schemas/user-event.json", kUserEvent);
  write("new/schemas/a.json", kUserEvent);
  config::Config previous = configIn("old");
  previous.pipelines.push_back(pipeline("old", "users", "user-event.json"));
  config::Config current = configIn("new");
  current.pipelines.push_back(perType("new", "users", {{"a", "a.json"}}, Unknown::Error));
  EXPECT_THAT(check(previous, current),
              ElementsAre("@/new/pipelines/users.yaml: pipeline users: event types not listed: "
                          "rejected now (unknown_type: error), accepted before"));
}

TEST_F(SchemaEvolutionTest, AChangedTypeFieldCannotBeCompared) {
  using Unknown = config::SchemaSpec::UnknownType;
  write("old/schemas/a.json", R"({"type": "object"})");
  write("new/schemas/a.json", R"({"type": "object"})");
  config::Config previous = configIn("old");
  previous.pipelines.push_back(perType("old", "payments", {{"a", "a.json"}}, Unknown::Error));
  config::Config current = configIn("new");
  current.pipelines.push_back(perType("new", "payments", {{"a", "a.json"}}, Unknown::Error));
  current.pipelines.back().schema.type_field = "/kind";
  EXPECT_THAT(check(previous, current),
              ElementsAre("@/new/pipelines/payments.yaml: pipeline payments: type_field changed "
                          "from /type to /kind: cannot compare the per-type schemas"));
}

TEST_F(SchemaEvolutionTest, AnUnreadableSchemaIsReportedNotSkipped) {
  write("old/schemas/user-event.json", kUserEvent);
  write("new/schemas/user-event.json", "{\"type\": ");
  config::Config previous = configIn("old");
  previous.pipelines.push_back(pipeline("old", "users", "user-event.json"));
  config::Config current = configIn("new");
  current.pipelines.push_back(pipeline("new", "users", "user-event.json"));
  const std::vector<std::string> lines = check(previous, current);
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_THAT(lines[0], HasSubstr("@/new/pipelines/users.yaml: pipeline users, schema "
                                  "schemas/user-event.json: cannot compare: "));
  EXPECT_THAT(lines[0], HasSubstr("not valid JSON"));
}

TEST_F(SchemaEvolutionTest, ReferencedFilesNextToTheSchemaAreFollowed) {
  write("old/schemas/user-event.json", R"({"properties": {"ts": {"$ref": "common.json#/ts"}}})");
  write("old/schemas/common.json", R"({"ts": {"type": "integer", "minimum": 0}})");
  write("new/schemas/user-event.json", R"({"properties": {"ts": {"$ref": "common.json#/ts"}}})");
  write("new/schemas/common.json", R"({"ts": {"type": "integer", "minimum": 5}})");
  config::Config previous = configIn("old");
  previous.pipelines.push_back(pipeline("old", "users", "user-event.json"));
  config::Config current = configIn("new");
  current.pipelines.push_back(pipeline("new", "users", "user-event.json"));
  const std::vector<std::string> lines = check(previous, current);
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_THAT(lines[0], HasSubstr("raised from 0 to 5"));
}

// A reload compares against the files as the running config read them: by then the edit has
// overwritten them on disk.
TEST_F(SchemaEvolutionTest, SnapshotsInsteadOfTheFilesOnDisk) {
  const fs::path file = write("new/schemas/user-event.json", R"({"required": ["id", "locale"]})");
  config::Config config = configIn("new");
  config.pipelines.push_back(pipeline("new", "users", "user-event.json"));

  const SchemaFiles running{{file, std::string(kUserEvent)}};
  EXPECT_THAT(check(config, config, &running),
              ElementsAre("@/new/pipelines/users.yaml: pipeline users, schema "
                          "schemas/user-event.json: at /required: \"locale\" is newly required"));

  // Equal snapshots are equal schemas, whatever is on disk.
  EXPECT_THAT(check(config, config, &running, &running), IsEmpty());

  // A file the snapshot does not have cannot be compared.
  const SchemaFiles empty;
  const std::vector<std::string> lines = check(config, config, &empty);
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_THAT(lines[0], HasSubstr("not there when that config was loaded"));
}

TEST_F(SchemaEvolutionTest, ReadSchemaFilesAndSchemaFilesOf) {
  const fs::path main = write("new/schemas/user-event.json", R"({"$ref": "common.json"})");
  const fs::path common = write("new/schemas/common.json", R"({"type": "object"})");
  const fs::path alone = write("new/other/alone.json", R"({"type": "object"})");
  write("new/other/notes.txt", "not a schema");
  config::Config config = configIn("new");
  config.pipelines.push_back(pipeline("new", "users", "user-event.json"));
  config.pipelines.push_back(pipeline("new", "other", "../other/alone.json"));
  config.pipelines.back().schema.file = alone;

  auto read = readSchemaFiles(config);
  ASSERT_TRUE(std::holds_alternative<SchemaFiles>(read)) << std::get<std::string>(read);
  const SchemaFiles& files = std::get<SchemaFiles>(read);
  EXPECT_EQ(files.size(), 3u);
  EXPECT_EQ(files.at(common), R"({"type": "object"})");

  // users' schema refers to another document: every file next to it is part of it.
  const SchemaFiles users = schemaFilesOf(config.pipelines[0], files);
  EXPECT_EQ(users.size(), 2u);
  EXPECT_TRUE(users.contains(main));
  EXPECT_TRUE(users.contains(common));
  const SchemaFiles other = schemaFilesOf(config.pipelines[1], files);
  EXPECT_EQ(other.size(), 1u);
  EXPECT_TRUE(other.contains(alone));
}

}  // namespace
}  // namespace kpipe::app
