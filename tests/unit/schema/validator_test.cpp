// compileFile/compileText errors, and the failures validate() reports: one message per rule, with
// its JSON pointer and the offending value.

#include "daemon/schema/validator.h"

#include "tests/unit/schema/test_util.h"
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace kpipe::schema {
namespace {

namespace fs = std::filesystem;
using testing::compileErrorOf;
using testing::compileOrThrow;
using ::testing::ElementsAre;
using testing::explainOf;
using ::testing::HasSubstr;
using testing::parseOrThrow;
using ::testing::StartsWith;

// ---------------------------------------------------------------------------------------------
// Compilation

TEST(CompileTest, BadJsonNamesOriginLineColumnAndOffset) {
  // given: a missing comma at line 3, column 3
  const auto result =
      compileText("{\n  \"type\": \"object\"\n  \"required\": [\"a\"]\n}", "bad.json");

  // then
  ASSERT_TRUE(std::holds_alternative<CompileError>(result));
  EXPECT_EQ(std::get<CompileError>(result).message,
            "bad.json:3:3: not valid JSON at offset 23: Missing a comma or '}' after an object "
            "member.");
}

TEST(CompileTest, InvalidUtf8IsNotValidJson) {
  EXPECT_THAT(compileErrorOf("{\"title\": \"\xff\"}"),
              StartsWith("test.json:1:12: not valid JSON at offset 11: Invalid encoding"));
}

TEST(CompileTest, EmptyTextIsNotValidJson) {
  EXPECT_EQ(compileErrorOf(""),
            "test.json:1:1: not valid JSON at offset 0: The document is empty.");
}

TEST(CompileTest, TrailingGarbageIsNotValidJson) {
  EXPECT_THAT(compileErrorOf("{} {}"), HasSubstr("not valid JSON at offset 3"));
}

TEST(CompileTest, SchemaMustBeObjectOrBoolean) {
  EXPECT_EQ(compileErrorOf("[1]"),
            "test.json: schema is not supported/invalid: a schema must be a JSON object or a "
            "boolean");
}

TEST(CompileTest, SchemaValijsonRefusesIsReported) {
  // A count must be an integer; 2.0 is one (see DecimalCountsThatAreIntegersAreAccepted).
  EXPECT_THAT(compileErrorOf(R"({"minItems": 2.5})"),
              StartsWith("test.json: schema is not supported/invalid: "));
  EXPECT_THAT(compileErrorOf(R"({"type": 5})"),
              StartsWith("test.json: schema is not supported/invalid: "));
  EXPECT_THAT(compileErrorOf(R"({"$ref": "#/definitions/missing"})"),
              StartsWith("test.json: schema is not supported/invalid: "));
}

TEST(CompileTest, RemoteReferencesAreNeverFetched) {
  EXPECT_EQ(
      compileErrorOf(R"({"$ref": "http://127.0.0.1:9/schema.json"})"),
      "test.json: schema is not supported/invalid: $ref to \"http://127.0.0.1:9/schema.json\" "
      "cannot be resolved: it is not the $id of a schema here, nor a file next to the schema "
      "file, and kpipe never fetches remote documents");
}

TEST(CompileTest, UnknownAnchorNamesTheReference) {
  EXPECT_EQ(
      compileErrorOf(
          R"({"$id": "http://example.com/a.json", "properties": {"a": {"$ref": "#nowhere"}}})"),
      "test.json: schema is not supported/invalid: $ref to \"#nowhere\" cannot be "
      "resolved: no $id \"http://example.com/a.json#nowhere\" in the schema or the "
      "documents it uses");
}

TEST(CompileTest, DecimalCountsThatAreIntegersAreAccepted) {
  EXPECT_EQ(explainOf(R"({"maxItems": 2.0, "minLength": 1.0})", "[1, 2]"), "");
  EXPECT_EQ(explainOf(R"({"maxItems": 2.0})", "[1, 2, 3]"),
            "at the root: array has more items than maxItems 2 (it has 3 items)");
}

TEST(CompileTest, IntegersWrittenWithAFractionPart) {
  EXPECT_EQ(explainOf(R"({"type": "integer"})", "1.0"), "");
  EXPECT_EQ(explainOf(R"({"type": ["integer", "string"]})", "1.5"),
            "at the root: 1.5 is not of type [\"integer\",\"string\"]");
  EXPECT_EQ(explainOf(R"({"multipleOf": 1e-8})", "12391239123"), "");
  EXPECT_EQ(explainOf(R"({"multipleOf": 0.01})", "0.07"), "");
  EXPECT_EQ(explainOf(R"({"multipleOf": 0.01})", "0.0751"),
            "at the root: 0.0751 is not a multiple of 0.01");
}

TEST(CompileTest, IdsResolveReferences) {
  // given: an embedded $id, a relative one, and a location-independent "#name"
  const SchemaPtr schema = compileOrThrow(R"({
    "$id": "http://example.com/root.json",
    "properties": {
      "a": {"$ref": "item.json"},
      "b": {"$ref": "http://example.com/nested/deep.json#/definitions/n"},
      "c": {"$ref": "#positive"}
    },
    "definitions": {
      "item": {"$id": "item.json", "type": "string"},
      "deep": {"$id": "nested/deep.json", "definitions": {"n": {"type": "null"}}},
      "positive": {"$id": "#positive", "minimum": 0}
    }
  })");
  Validator validator;

  // then
  EXPECT_EQ(explainOf(validator, *schema, R"({"a": "x", "b": null, "c": 1})"), "");
  EXPECT_EQ(explainOf(validator, *schema, R"({"a": 1, "b": 2, "c": -1})"),
            "at /a: 1 is not of type \"string\"; at /b: 2 is not of type \"null\"; "
            "at /c: -1 is less than minimum 0");
}

TEST(CompileTest, FormatIsIgnoredOnNonStringsAndForUnknownFormats) {
  EXPECT_EQ(explainOf(R"({"format": "date"})", R"({"a": 1})"), "");
  EXPECT_EQ(explainOf(R"({"format": "date"})", "5"), "");
  EXPECT_EQ(explainOf(R"({"format": "x-unknown"})", R"("anything")"), "");
}

TEST(CompileTest, InvalidPatternIsACompileError) {
  EXPECT_THAT(compileErrorOf(R"({"properties": {"a": {"pattern": "a("}}})"),
              StartsWith("test.json: schema is not supported/invalid: invalid pattern \"a(\": "));
  EXPECT_EQ(compileErrorOf(R"({"pattern": 5})"),
            "test.json: schema is not supported/invalid: \"pattern\" must be a string");
}

TEST(CompileTest, BackReferencesAreRefused) {
  // They cannot be matched in polynomial time.
  EXPECT_EQ(compileErrorOf(R"({"pattern": "(a)\\1"})"),
            "test.json: schema is not supported/invalid: pattern \"(a)\\1\" uses a back-reference, "
            "which kpipe does not support");
}

TEST(CompileTest, ReservedKeywordIsRefused) {
  EXPECT_EQ(compileErrorOf(R"({"items": {"$kpipe:pattern": "x"}})"),
            "test.json: schema is not supported/invalid: the keyword \"$kpipe:pattern\" is "
            "reserved by kpipe");
}

TEST(CompileTest, BooleanSchemas) {
  EXPECT_EQ(explainOf("true", R"({"anything": 1})"), "");
  EXPECT_EQ(explainOf("false", "1"), "at the root: does not match the schema");
}

TEST(CompileTest, RefCyclesThatNeverDescendAreRefused) {
  // valijson would recurse without end: at compile time, or at the first validation.
  constexpr const char* kCycle =
      "test.json: schema is not supported/invalid: the schema refers to itself without "
      "descending into the document (a $ref cycle), so validation would never end";
  EXPECT_EQ(compileErrorOf(R"({"$ref": "#"})"), kCycle);
  EXPECT_EQ(compileErrorOf(R"({"allOf": [{"$ref": "#"}]})"), kCycle);
  EXPECT_EQ(compileErrorOf(R"({
    "definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"anyOf": [{"$ref": "#/definitions/a"}]}},
    "properties": {"x": {"$ref": "#/definitions/a"}}
  })"),
            kCycle);
}

TEST(CompileTest, RecursionThroughTheDocumentIsFine) {
  constexpr const char* kTree =
      R"({"required": ["id"], "properties": {"children": {"items": {"$ref": "#"}}}})";
  EXPECT_EQ(explainOf(kTree, R"({"id": 1, "children": [{"id": 2}, {"children": []}]})"),
            "at /children/1: missing required property \"id\"");
}

TEST(CompileTest, RootRefToALocalDefinition) {
  constexpr const char* kSchema =
      R"({"$ref": "#/definitions/event", "definitions": {"event": {"required": ["a"]}}})";
  EXPECT_EQ(explainOf(kSchema, R"({"a": 1})"), "");
  EXPECT_EQ(explainOf(kSchema, "{}"), "at the root: missing required property \"a\"");
}

TEST(CompileTest, TooDeepSchemaIsRefused) {
  std::string schema;
  for (int i = 0; i < 300; ++i) schema += R"({"items": )";
  schema += "{}";
  for (int i = 0; i < 300; ++i) schema += "}";
  EXPECT_EQ(compileErrorOf(schema),
            "test.json: schema is not supported/invalid: schema nests deeper than 256 levels");
}

class CompileFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("kpipe_schema_" + std::string(test->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, std::string_view text) {
    fs::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return dir_ / name;
  }

  fs::path dir_;
};

TEST_F(CompileFileTest, MissingFile) {
  const auto result = compileFile(dir_ / "absent.json");
  ASSERT_TRUE(std::holds_alternative<CompileError>(result));
  EXPECT_EQ(
      std::get<CompileError>(result).message,
      (dir_ / "absent.json").string() + ": cannot read schema file: No such file or directory");
}

TEST_F(CompileFileTest, DirectoryIsNotASchemaFile) {
  const auto result = compileFile(dir_);
  ASSERT_TRUE(std::holds_alternative<CompileError>(result));
  EXPECT_EQ(std::get<CompileError>(result).message,
            dir_.string() + ": cannot read schema file: is a directory");
}

TEST_F(CompileFileTest, ParseErrorNamesTheFile) {
  const fs::path file = write("event.json", "{\n  \"type\": \"object\",\n}");
  const auto result = compileFile(file);
  ASSERT_TRUE(std::holds_alternative<CompileError>(result));
  EXPECT_THAT(std::get<CompileError>(result).message, StartsWith(file.string() + ":3:1: "));
}

TEST_F(CompileFileTest, RelativeReferencesResolveNextToTheSchema) {
  // given: a $ref to a file in a subdirectory, whose pattern must be the safe one too
  write("common/ids.json", R"({"definitions": {"id": {"type": "string", "pattern": "^[0-9]+$"}}})");
  const fs::path file = write("event.json", R"({
    "properties": {"id": {"$ref": "common/ids.json#/definitions/id"}}
  })");

  // when
  auto result = compileFile(file);

  // then
  ASSERT_TRUE(std::holds_alternative<SchemaPtr>(result)) << std::get<CompileError>(result).message;
  const SchemaPtr schema = std::get<SchemaPtr>(result);
  Validator validator;
  EXPECT_EQ(explainOf(validator, *schema, R"({"id": "42"})"), "");
  EXPECT_EQ(explainOf(validator, *schema, R"({"id": "x"})"),
            "at /id: \"x\" does not match pattern \"^[0-9]+$\"");
  EXPECT_EQ(explainOf(validator, *schema, "{\"id\": \"" + std::string(20000, '1') + "\"}"),
            "at /id: string too long for pattern check (20000 > 4096 bytes)");
}

TEST_F(CompileFileTest, ReferencedFilesMustBeUnderTheRootSchemasDirectory) {
  write("common.json", R"({"type": "string"})");
  const fs::path file = write("events/event.json", R"({"$ref": "../common.json"})");
  auto result = compileFile(file);
  ASSERT_TRUE(std::holds_alternative<CompileError>(result));
  EXPECT_NE(std::get<CompileError>(result).message.find("is outside"), std::string::npos)
      << std::get<CompileError>(result).message;
}

TEST_F(CompileFileTest, RootRefToAFile) {
  write("event.json", R"({"required": ["a"]})");
  auto result = compileFile(write("pipeline.json", R"({"$ref": "event.json"})"));
  ASSERT_TRUE(std::holds_alternative<SchemaPtr>(result)) << std::get<CompileError>(result).message;
  Validator validator;
  EXPECT_EQ(explainOf(validator, *std::get<SchemaPtr>(result), "{}"),
            "at the root: missing required property \"a\"");
}

TEST_F(CompileFileTest, MissingReferencedFileIsACompileError) {
  const fs::path file = write("event.json", R"({"$ref": "absent.json"})");
  const auto result = compileFile(file);
  ASSERT_TRUE(std::holds_alternative<CompileError>(result));
  EXPECT_THAT(std::get<CompileError>(result).message,
              HasSubstr("$ref to \"absent.json\": " + (dir_ / "absent.json").string() +
                        ": No such file or directory"));
}

TEST_F(CompileFileTest, IdsAcrossFilesAndRelativeToTheReferringFile) {
  // given: a file whose root $id differs from its name, and a $ref relative to a subdirectory
  write("common/types.json", R"({
    "$id": "http://example.com/types.json",
    "definitions": {"id": {"$ref": "ids.json#/definitions/id"}}
  })");
  write("common/ids.json", R"({"definitions": {"id": {"type": "string", "minLength": 2}}})");
  const fs::path file = write("event.json", R"({
    "properties": {"id": {"$ref": "common/types.json#/definitions/id"}}
  })");

  // when: types.json's "ids.json" resolves against its $id (example.com), which is no file
  const auto result = compileFile(file);

  // then
  ASSERT_TRUE(std::holds_alternative<CompileError>(result));
  EXPECT_THAT(std::get<CompileError>(result).message,
              HasSubstr("$ref to \"ids.json#/definitions/id\" cannot be resolved"));

  // and: mirrored, the same URL is read from the directory
  const auto mirrored =
      compileFile(file, CompileOptions{{{"http://example.com/", dir_ / "common"}}});
  ASSERT_TRUE(std::holds_alternative<SchemaPtr>(mirrored))
      << std::get<CompileError>(mirrored).message;
  Validator validator;
  EXPECT_EQ(explainOf(validator, *std::get<SchemaPtr>(mirrored), R"({"id": "x"})"),
            "at /id: \"x\" is shorter than minLength 2");
}

TEST_F(CompileFileTest, YamlSchemas) {
  // given: a YAML schema referring to a JSON one, with YAML's plain scalars typed as JSON's
  write("common.json", R"({"definitions": {"plan": {"enum": ["free", "pro"]}}})");
  const fs::path file = write("event.yaml", R"(
type: object
required: [msg_id, count]
properties:
  msg_id: {type: string, format: uuid}
  count: {type: integer, minimum: 1, maximum: 10.5}
  flag: {const: true}
  code: {const: "007"}
  plan: {$ref: "common.json#/definitions/plan"}
)");

  // when
  const auto result = compileFile(file);

  // then
  ASSERT_TRUE(std::holds_alternative<SchemaPtr>(result)) << std::get<CompileError>(result).message;
  Validator validator;
  const Schema& schema = *std::get<SchemaPtr>(result);
  EXPECT_EQ(explainOf(validator, schema,
                      R"({"msg_id": "123e4567-e89b-12d3-a456-426614174000", "count": 3,
                          "flag": true, "code": "007", "plan": "pro"})"),
            "");
  EXPECT_EQ(explainOf(validator, schema,
                      R"({"msg_id": "x", "count": 11, "flag": "true", "code": 7, "plan": "gold"})"),
            "at /code: 7 is not equal to const \"007\"; at /count: 11 is greater than maximum "
            "10.5; at /flag: \"true\" is not equal to const true; at /msg_id: \"x\" is not a "
            "valid uuid; at /plan: \"gold\" is not one of [\"free\",\"pro\"]");
}

TEST_F(CompileFileTest, YamlErrorsNameFileAndLine) {
  const fs::path bad = write("bad.yml", "type: object\nproperties:\n  a: [1, 2\n");
  auto result = compileFile(bad);
  ASSERT_TRUE(std::holds_alternative<CompileError>(result));
  EXPECT_THAT(std::get<CompileError>(result).message, StartsWith(bad.string() + ":"));
  EXPECT_THAT(std::get<CompileError>(result).message, HasSubstr("not valid YAML"));

  const fs::path duplicate = write("dup.yaml", "type: object\nrequired: [a]\ntype: array\n");
  result = compileFile(duplicate);
  ASSERT_TRUE(std::holds_alternative<CompileError>(result));
  EXPECT_EQ(std::get<CompileError>(result).message,
            duplicate.string() + ":3:1: duplicate key \"type\"");
}

TEST(CompileTextTest, FileReferencesNeedAFile) {
  EXPECT_THAT(compileErrorOf(R"({"$ref": "common.json"})"),
              HasSubstr("$ref to \"common.json\" cannot be resolved"));
}

// ---------------------------------------------------------------------------------------------
// One message per rule

constexpr const char* kEventSchema = R"({
  "type": "object",
  "required": ["msg_id", "user_id", "type"],
  "additionalProperties": false,
  "properties": {
    "msg_id": {"type": "string", "pattern": "^[0-9a-f-]{36}$"},
    "user_id": {"type": "integer", "minimum": 1},
    "type": {"enum": ["a", "b"]},
    "amount": {"type": "number", "minimum": 0, "maximum": 1000},
    "version": {"const": 2},
    "name": {"type": ["string", "null"], "minLength": 2, "maxLength": 5},
    "tags": {"type": "array", "minItems": 1, "maxItems": 2, "uniqueItems": true},
    "data": {"type": "object", "properties": {"user_id": {"type": "string"}}}
  }
})";
constexpr const char* kValidEvent =
    R"({"msg_id": "123e4567-e89b-12d3-a456-426614174000", "user_id": 7, "type": "a"})";

class RuleMessageTest : public ::testing::Test {
 protected:
  // Explains `json` after merging its members over kValidEvent.
  std::string explainEvent(std::string_view json) {
    rapidjson::Document event = parseOrThrow(kValidEvent);
    const rapidjson::Document patch = parseOrThrow(json);
    for (const auto& member : patch.GetObject()) {
      event.RemoveMember(member.name);
      event.AddMember(rapidjson::Value(member.name, event.GetAllocator()),
                      rapidjson::Value(member.value, event.GetAllocator()), event.GetAllocator());
    }
    std::vector<Failure> failures;
    validator_.validate(*schema_, event, &failures);
    return explain(failures);
  }

  SchemaPtr schema_ = compileOrThrow(kEventSchema);
  Validator validator_;
};

TEST_F(RuleMessageTest, ValidDocumentHasNoFailures) {
  std::vector<Failure> failures;
  EXPECT_TRUE(validator_.validate(*schema_, parseOrThrow(kValidEvent), &failures));
  EXPECT_TRUE(failures.empty());
  EXPECT_TRUE(validator_.validate(*schema_, parseOrThrow(kValidEvent), nullptr));
}

TEST_F(RuleMessageTest, Required) {
  EXPECT_EQ(explainOf(validator_, *schema_,
                      R"({"msg_id": "123e4567-e89b-12d3-a456-426614174000", "type": "a"})"),
            "at the root: missing required property \"user_id\"");
}

TEST_F(RuleMessageTest, Type) {
  EXPECT_EQ(explainEvent(R"({"user_id": "7"})"), "at /user_id: \"7\" is not of type \"integer\"");
  EXPECT_EQ(explainEvent(R"({"name": 5})"), "at /name: 5 is not of type [\"string\",\"null\"]");
  EXPECT_EQ(explainOf(validator_, *schema_, "[]"), "at the root: [] is not of type \"object\"");
}

TEST_F(RuleMessageTest, Enum) {
  EXPECT_EQ(explainEvent(R"({"type": "x"})"), "at /type: \"x\" is not one of [\"a\",\"b\"]");
}

TEST_F(RuleMessageTest, Const) {
  EXPECT_EQ(explainEvent(R"({"version": 3})"), "at /version: 3 is not equal to const 2");
}

TEST_F(RuleMessageTest, MinimumAndMaximum) {
  EXPECT_EQ(explainEvent(R"({"amount": -3})"), "at /amount: -3 is less than minimum 0");
  EXPECT_EQ(explainEvent(R"({"amount": 1000.5})"),
            "at /amount: 1000.5 is greater than maximum 1000");
  EXPECT_EQ(explainEvent(R"({"user_id": 0})"), "at /user_id: 0 is less than minimum 1");
}

TEST(RuleMessages, ExclusiveLimitsAndDecimals) {
  constexpr const char* kSchema =
      R"({"properties": {"p": {"exclusiveMinimum": 0.5, "exclusiveMaximum": 2.25}}})";
  EXPECT_EQ(explainOf(kSchema, R"({"p": 0.5})"),
            "at /p: 0.5 is not greater than exclusiveMinimum 0.5");
  EXPECT_EQ(explainOf(kSchema, R"({"p": 2.25})"),
            "at /p: 2.25 is not less than exclusiveMaximum 2.25");
  EXPECT_EQ(explainOf(R"({"multipleOf": 0.25})", "0.3"),
            "at the root: 0.3 is not a multiple of 0.25");
}

TEST_F(RuleMessageTest, MinLengthAndMaxLength) {
  EXPECT_EQ(explainEvent(R"({"name": "a"})"), "at /name: \"a\" is shorter than minLength 2");
  EXPECT_EQ(explainEvent(R"({"name": "abcdef"})"),
            "at /name: \"abcdef\" is longer than maxLength 5");
}

TEST_F(RuleMessageTest, Pattern) {
  EXPECT_EQ(explainEvent(R"({"msg_id": "abc"})"),
            "at /msg_id: \"abc\" does not match pattern \"^[0-9a-f-]{36}$\"");
}

TEST_F(RuleMessageTest, AdditionalProperties) {
  EXPECT_EQ(explainEvent(R"({"extra": true})"),
            "at the root: additional property \"extra\" is not allowed");
}

TEST_F(RuleMessageTest, ArrayRules) {
  EXPECT_EQ(explainEvent(R"({"tags": []})"),
            "at /tags: array has fewer items than minItems 1 (it has 0 items)");
  EXPECT_EQ(explainEvent(R"({"tags": ["x", "y", "z"]})"),
            "at /tags: array has more items than maxItems 2 (it has 3 items)");
  EXPECT_EQ(explainEvent(R"({"tags": ["x", "x"]})"),
            "at /tags: items 0 and 1 are equal, but uniqueItems is true");
}

TEST(RuleMessages, CombinatorsAndOthers) {
  EXPECT_EQ(explainOf(R"({"anyOf": [{"type": "string"}, {"minimum": 5}]})", "3"),
            "at the root: 3 is not of type \"string\"; at the root: 3 is less than minimum 5; "
            "at the root: 3 matches none of the schemas in anyOf");
  EXPECT_EQ(explainOf(R"({"oneOf": [{"type": "integer"}, {"minimum": 1}]})", "3"),
            "at the root: 3 matches more than one schema in oneOf");
  EXPECT_EQ(explainOf(R"({"not": {"type": "integer"}})", "3"),
            "at the root: 3 must not match the schema in \"not\"");
  EXPECT_EQ(explainOf(R"({"minProperties": 2})", R"({"a": 1})"),
            "at the root: object has fewer properties than minProperties 2 (it has 1 properties)");
  EXPECT_EQ(explainOf(R"({"contains": {"const": 1}})", "[2, 3]"),
            "at the root: array has no item that matches \"contains\"");
  EXPECT_EQ(explainOf(R"({"dependencies": {"a": ["b"]}})", R"({"a": 1})"),
            "at the root: missing property \"b\" (required by dependencies)");
  EXPECT_EQ(explainOf(R"({"items": [{"type": "integer"}], "additionalItems": false})", "[1, 2]"),
            "at the root: array has more items than \"items\" allows (it has 2 items)");
}

TEST(RuleMessages, OperandsAreFoundThroughRefsAndAllOf) {
  constexpr const char* kSchema = R"({
    "definitions": {"level": {"enum": ["info", "warn"]}, "small": {"maximum": 10}},
    "properties": {
      "level": {"$ref": "#/definitions/level"},
      "n": {"allOf": [{"minimum": 0}, {"$ref": "#/definitions/small"}]}
    }
  })";
  EXPECT_EQ(explainOf(kSchema, R"({"level": "debug", "n": 11})"),
            "at /level: \"debug\" is not one of [\"info\",\"warn\"]; "
            "at /n: 11 is greater than maximum 10");
}

// ---------------------------------------------------------------------------------------------
// Pointers, values, wrappers, limits

TEST(FailureTest, NestedPointersAndArrayIndices) {
  constexpr const char* kSchema = R"({
    "properties": {"data": {"properties": {"items": {"items": {
      "properties": {"qty": {"type": "integer", "minimum": 1}}
    }}}}}
  })";
  EXPECT_EQ(explainOf(kSchema, R"({"data": {"items": [{"qty": 1}, {"qty": 0}, {"qty": 2}]}})"),
            "at /data/items/1/qty: 0 is less than minimum 1");
}

TEST(FailureTest, PointerTokensAreEscaped) {
  constexpr const char* kSchema =
      R"({"properties": {"a/b": {"type": "string"}, "c~d": {"type": "string"}}})";
  EXPECT_EQ(explainOf(kSchema, R"({"a/b": 1, "c~d": 2})"),
            "at /a~1b: 1 is not of type \"string\"; at /c~0d: 2 is not of type \"string\"");
}

TEST(FailureTest, NestedRequiredPointsAtTheObject) {
  constexpr const char* kSchema =
      R"({"properties": {"data": {"required": ["user_id"]}}, "required": ["data"]})";
  EXPECT_EQ(explainOf(kSchema, R"({"data": {}})"),
            "at /data: missing required property \"user_id\"");
}

TEST(FailureTest, WrappersAreDroppedWhenSomethingMoreSpecificIsSaid) {
  // valijson adds "failed to validate against schema associated with property name" for each
  // level above the real error, and "child schema #n" for allOf.
  constexpr const char* kSchema = R"({
    "properties": {"a": {"properties": {"b": {"allOf": [{"type": "string"}]}}}}
  })";
  std::vector<Failure> failures;
  Validator validator;
  EXPECT_FALSE(
      validator.validate(*compileOrThrow(kSchema), parseOrThrow(R"({"a": {"b": 1}})"), &failures));
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].pointer, "/a/b");
  EXPECT_EQ(failures[0].message, "1 is not of type \"string\"");
}

TEST(FailureTest, WrapperIsKeptWhenItIsAllThereIs) {
  // A `false` schema fails without a message of its own.
  EXPECT_EQ(explainOf(R"({"properties": {"x": false}})", R"({"x": 1})"),
            "at the root: property \"x\" does not match its schema");
}

TEST(FailureTest, MultipleFailuresAreAllReported) {
  constexpr const char* kSchema = R"({
    "required": ["id"],
    "properties": {"a": {"type": "string"}, "b": {"minimum": 0}, "c": {"enum": [1]}}
  })";
  EXPECT_EQ(explainOf(kSchema, R"({"a": 1, "b": -1, "c": 2})"),
            "at /a: 1 is not of type \"string\"; at /b: -1 is less than minimum 0; "
            "at /c: 2 is not one of [1]; at the root: missing required property \"id\"");
}

TEST(FailureTest, FailuresAreCappedAtMaxFailuresAndAppended) {
  const SchemaPtr schema = compileOrThrow(R"({"items": {"type": "string"}})");
  Validator validator;
  std::vector<Failure> failures{{"/earlier", "kept"}};

  EXPECT_FALSE(validator.validate(*schema, parseOrThrow("[1, 2, 3, 4, 5]"), &failures, 2));

  ASSERT_EQ(failures.size(), 3u);
  EXPECT_EQ(failures[0].str(), "at /earlier: kept");
  EXPECT_EQ(failures[1].str(), "at /0: 1 is not of type \"string\"");
  EXPECT_EQ(failures[2].str(), "at /1: 2 is not of type \"string\"");
}

TEST(FailureTest, NoFailuresVectorOnlyAnswers) {
  const SchemaPtr schema = compileOrThrow(R"({"type": "string"})");
  Validator validator;
  EXPECT_FALSE(validator.validate(*schema, parseOrThrow("1"), nullptr));
  EXPECT_TRUE(validator.validate(*schema, parseOrThrow("\"s\""), nullptr));
  std::vector<Failure> failures;
  EXPECT_FALSE(validator.validate(*schema, parseOrThrow("1"), &failures, 0));
  EXPECT_TRUE(failures.empty());
}

TEST(FailureTest, LongValuesAreTruncated) {
  const std::string long_string(200, 'a');
  EXPECT_EQ(explainOf(R"({"maxLength": 10})", "\"" + long_string + "\""),
            "at the root: \"" + std::string(59, 'a') + "\u2026 is longer than maxLength 10");

  // Never in the middle of a UTF-8 sequence: 1 + 29 * 2 = 59 bytes fit, the 30th é does not.
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "\u00e9";
  std::string expected_prefix = "\"";
  for (int i = 0; i < 29; ++i) expected_prefix += "\u00e9";
  EXPECT_EQ(explainOf(R"({"maxLength": 10})", "\"" + accents + "\""),
            "at the root: " + expected_prefix + "\u2026 is longer than maxLength 10");

  std::string big_object = "{";
  for (int i = 0; i < 100; ++i) big_object += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  big_object += "}";
  EXPECT_EQ(explainOf(R"({"type": "array"})", big_object),
            "at the root: {\"k0\":1,\"k1\":1,\"k2\":1,\"k3\":1,\"k4\":1,\"k5\":1,\"k6\":1,\"k7\":1,"
            "\"k8\u2026 is not of type \"array\"");
}

TEST(FailureTest, DeeplyNestedValuesAreRenderedWithoutDeepRecursion) {
  // given: 100,000 nested arrays (RapidJSON parses them iteratively)
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');

  // then: the value is cut after 60 bytes instead of being walked to the bottom
  EXPECT_EQ(explainOf(R"({"type": "object"})", deep),
            "at the root: " + std::string(60, '[') + "\u2026 is not of type \"object\"");
}

TEST(FailureTest, ExplainJoinsWithSemicolons) {
  EXPECT_EQ(explain({}), "");
  EXPECT_EQ(explain({{"", "a"}, {"/x", "b"}}), "at the root: a; at /x: b");
}

TEST(FailureTest, ExceptionsDuringValidationBecomeFailures) {
  // valijson compiles patternProperties' regexes during validation, so an ECMAScript construct
  // std::regex does not know (\p{...}) throws there rather than at compile time.
  EXPECT_THAT(explainOf(R"({"patternProperties": {"\\p{L}": {}}})", R"({"a": 1})"),
              StartsWith("at the root: validation error: "));
}

TEST(RuleMessages, Formats) {
  const char* schema = R"({"properties": {
    "msg_id": {"format": "uuid"}, "at": {"format": "date-time"}, "day": {"format": "date"},
    "mail": {"format": "email"}, "host": {"format": "ipv4"}, "link": {"format": "uri"}}})";
  EXPECT_EQ(explainOf(schema, R"({"msg_id": "123e4567-e89b-12d3-a456-426614174000",
    "at": "2024-02-29T23:59:59.5+01:00", "day": "2024-02-29", "mail": "a.b@example.com",
    "host": "10.0.0.1", "link": "https://example.com/a?b#c"})"),
            "");
  EXPECT_EQ(explainOf(schema, R"({"msg_id": "abc", "at": "2023-02-29T00:00:00Z",
    "day": "2023-02-29", "mail": "a..b@example.com", "host": "10.0.0.256", "link": "/relative"})"),
            "at /at: \"2023-02-29T00:00:00Z\" is not a valid date-time; "
            "at /day: \"2023-02-29\" is not a valid date; "
            "at /host: \"10.0.0.256\" is not a valid ipv4; "
            "at /link: \"/relative\" is not a valid uri; "
            "at /mail: \"a..b@example.com\" is not a valid email; "
            "at /msg_id: \"abc\" is not a valid uuid");
}

// ---------------------------------------------------------------------------------------------
// Reuse

TEST(ReuseTest, OneValidatorOverManyDocumentsAndTwoSchemas) {
  const SchemaPtr users = compileOrThrow(R"({"required": ["user_id"],
      "properties": {"user_id": {"type": "integer", "minimum": 1}}})");
  const SchemaPtr orders = compileOrThrow(R"({"required": ["order"],
      "properties": {"order": {"type": "string", "pattern": "^o-[0-9]+$"}}})");
  Validator validator;

  for (int i = 0; i < 2000; ++i) {
    const std::string n = std::to_string(i);
    EXPECT_EQ(explainOf(validator, *users, R"({"user_id": )" + n + "}"),
              i == 0 ? "at /user_id: 0 is less than minimum 1" : "");
    EXPECT_EQ(explainOf(validator, *orders, R"({"order": "o-)" + n + (i % 3 ? "\"}" : "x\"}")),
              i % 3 ? "" : "at /order: \"o-" + n + "x\" does not match pattern \"^o-[0-9]+$\"");
  }
}

TEST(ReuseTest, OneSchemaSharedByValidatorsOnSeveralThreads) {
  const SchemaPtr schema = compileOrThrow(kEventSchema);
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Validator validator;
      for (int i = 0; i < 500; ++i) {
        const bool valid_expected = i % 2 == 0;
        const auto document = parseOrThrow(valid_expected ? kValidEvent : R"({"msg_id": "x"})");
        std::vector<Failure> failures;
        if (validator.validate(*schema, document, &failures) != valid_expected) ++wrong[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_THAT(wrong, ElementsAre(0, 0, 0, 0));
}

}  // namespace
}  // namespace kpipe::schema
