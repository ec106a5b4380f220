// explain.h: the outline `kpipe explain SCHEMA` prints, and the command itself (exit codes,
// failures one per line, documents from a file or standard input).

#include "daemon/schema/explain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kpipe::schema {
namespace {

namespace fs = std::filesystem;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

fs::path sourceDir() {
  const char* dir = std::getenv("KPIPE_SOURCE_DIR");
  return dir != nullptr ? dir : KPIPE_SOURCE_DIR_DEFAULT;
}

std::string outlineOf(std::string_view json) {
  rapidjson::Document document;
  document.Parse(json.data(), json.size());
  if (document.HasParseError()) {
    ADD_FAILURE() << "not JSON: " << json;
    return "";
  }
  return outline(document);
}

// ---------------------------------------------------------------------------------------------
// The outline

TEST(OutlineTest, DemoUserEventSchema) {
  auto document = loadSchemaDocument(sourceDir() / "schemas" / "user-event.json");
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<rapidjson::Document>>(document))
      << std::get<std::string>(document);
  EXPECT_EQ(outline(*std::get<std::unique_ptr<rapidjson::Document>>(document)),
            "(document): object\n"
            "  msg_id*: string, pattern "
            "\"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$\"\n"
            "  user_id*: string, minLength 1, maxLength 64\n"
            "  type*: one of \"user.signed_up\" | \"user.updated\" | \"user.deleted\"\n"
            "  ts*: integer, minimum 0\n"
            "  data: object\n"
            "    email: string, maxLength 254\n"
            "    plan: one of \"free\" | \"pro\" | \"team\"\n"
            "    age: integer, minimum 13, maximum 150\n"
            "(* = required)\n");
}

TEST(OutlineTest, TypesConstFormatsBoundsAndDescription) {
  EXPECT_EQ(outlineOf(R"({
    "type": "object", "additionalProperties": false, "minProperties": 1,
    "properties": {
      "id": {"type": ["string", "null"], "format": "uuid", "description": "the id"},
      "kind": {"const": "v1"},
      "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "multipleOf": 0.5},
      "tags": {"type": "array", "minItems": 1, "maxItems": 3, "uniqueItems": true,
               "default": []}
    }})"),
            "(document): object, minProperties 1, no other properties\n"
            "  id: string | null, format \"uuid\" \u2014 \"the id\"\n"
            "  kind: const \"v1\"\n"
            "  score: number, exclusiveMinimum 0, exclusiveMaximum 1, multipleOf 0.5\n"
            "  tags: array, minItems 1, maxItems 3, default [], unique items\n"
            "(* = required)\n");
}

TEST(OutlineTest, RequiredPropertiesTheSchemaDoesNotDescribe) {
  EXPECT_EQ(outlineOf(R"({"required": ["a", "b"], "properties": {"a": {"type": "integer"}}})"),
            "(document): any value\n"
            "  a*: integer\n"
            "  b*: any value\n"
            "(* = required)\n");
}

TEST(OutlineTest, ItemsPatternPropertiesAdditionalAndCombinators) {
  EXPECT_EQ(outlineOf(R"({
    "patternProperties": {"^x-": {"type": "string"}},
    "additionalProperties": {"type": "integer"},
    "items": [{"type": "string"}, {"type": "number"}],
    "additionalItems": false,
    "contains": {"const": 1},
    "anyOf": [{"type": "object"}, {"type": "array"}],
    "not": {"type": "null"},
    "if": {"required": ["a"]}, "then": {"maxProperties": 2}, "else": true,
    "propertyNames": {"maxLength": 8}
  })"),
            "(document): any value\n"
            "  /^x-/: string\n"
            "  (other properties): integer\n"
            "  [0]: string\n"
            "  [1]: number\n"
            "  [...]: no value (false)\n"
            "  (contains): const 1\n"
            "  anyOf[0]: object\n"
            "  anyOf[1]: array\n"
            "  (not): null\n"
            "  (if): any value\n"
            "    a*: any value\n"
            "  (then): maxProperties 2\n"
            "  (else): any value\n"
            "  (propertyNames): maxLength 8\n"
            "(* = required)\n");
}

TEST(OutlineTest, ListItemsAndEnumsOfAllKinds) {
  EXPECT_EQ(outlineOf(R"({"type": "array", "items": {"enum": [1, "a", null, [true], {"k": 2}]}})"),
            "(document): array\n"
            "  []: one of 1 | \"a\" | null | [true] | {\"k\":2}\n"
            "(* = required)\n");
}

TEST(OutlineTest, LocalReferencesAreExpandedInPlace) {
  EXPECT_EQ(outlineOf(R"({
    "definitions": {"address": {"type": "object", "required": ["city"],
                                "properties": {"city": {"type": "string"}}}},
    "properties": {"billing": {"$ref": "#/definitions/address"},
                   "shipping": {"$ref": "#/definitions/address"}}
  })"),
            "(document): any value\n"
            "  billing: $ref #/definitions/address \u2192 object\n"
            "    city*: string\n"
            "  shipping: $ref #/definitions/address \u2192 object\n"
            "    city*: string\n"
            "(* = required)\n");
}

TEST(OutlineTest, RecursiveAndExternalReferences) {
  EXPECT_EQ(outlineOf(R"({
    "definitions": {"node": {"type": "object",
                             "properties": {"next": {"$ref": "#/definitions/node"}}}},
    "properties": {"head": {"$ref": "#/definitions/node"},
                   "other": {"$ref": "other.json#/definitions/x"},
                   "missing": {"$ref": "#/definitions/nope"}}
  })"),
            "(document): any value\n"
            "  head: $ref #/definitions/node \u2192 object\n"
            "    next: $ref #/definitions/node (recursive)\n"
            "  other: $ref other.json#/definitions/x (not expanded)\n"
            "  missing: $ref #/definitions/nope (not expanded)\n"
            "(* = required)\n");
}

TEST(OutlineTest, BooleanAndNonSchemaValues) {
  EXPECT_EQ(outlineOf("true"), "(document): any value\n(* = required)\n");
  EXPECT_EQ(outlineOf("false"), "(document): no value (false)\n(* = required)\n");
  EXPECT_EQ(outlineOf(R"({"properties": {"a": 5}})"),
            "(document): any value\n  a: not a schema: 5\n(* = required)\n");
}

TEST(OutlineTest, LongOperandsAreCutOnACharacterBoundary) {
  const std::string text = outlineOf(R"({"enum": [")" + std::string(100, 'x') + R"("]})");
  EXPECT_THAT(text, HasSubstr("one of \"" + std::string(79, 'x') + "\u2026\n"));
  // Multi-byte characters are not split: the 80th byte is inside the tenth "é".
  std::string accents;
  for (int i = 0; i < 20; ++i) accents += "\u00e9";
  const std::string cut = outlineOf(R"({"const": ")" + std::string(60, 'a') + accents + R"("})");
  EXPECT_THAT(cut,
              HasSubstr("const \"" + std::string(60, 'a') + accents.substr(0, 18) + "\u2026\n"));
}

TEST(OutlineTest, DeepNestingIsCut) {
  std::string json;
  for (int i = 0; i < 40; ++i) json += R"({"items": )";
  json += "{}";
  for (int i = 0; i < 40; ++i) json += "}";
  const std::string text = outlineOf(json);
  EXPECT_THAT(text, HasSubstr("\n" + std::string(66, ' ') + "[]: \u2026\n"));
  EXPECT_THAT(text, Not(HasSubstr(std::string(68, ' ') + "[]")));
}

// Found by tests/fuzz/schema_fuzz: every branch expands a $ref again, so definitions that each
// use the next one twice made an outline of 2^depth lines, and `kpipe explain` ran out of
// memory. The outline stops at 10,000 lines and says so.
TEST(OutlineTest, ReferencesThatFanOutAreCutAt10000Lines) {
  std::string json = R"({"definitions": {)";
  for (int i = 0; i < 40; ++i) {
    json += "\"d" + std::to_string(i) + R"(": {"allOf": [{"$ref": "#/definitions/d)" +
            std::to_string(i + 1) + R"("}, {"$ref": "#/definitions/d)" + std::to_string(i + 1) +
            "\"}]},";
  }
  json += R"("d40": {"type": "string"}}, "$ref": "#/definitions/d0"})";
  const std::string text = outlineOf(json);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 10'002);
  EXPECT_THAT(text, EndsWith("\u2026 (outline cut at 10000 lines: $refs expand to more)\n"
                             "(* = required)\n"));
}

// ---------------------------------------------------------------------------------------------
// Reading schema documents as written

class SchemaFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kpipe-explain-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, std::string_view text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return dir_ / name;
  }

  struct Run {
    int code;
    std::string out;
    std::string err;
  };
  Run explain(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string_view> views(args.begin(), args.end());
    std::istringstream in(input);
    std::ostringstream out;
    std::ostringstream err;
    const int code = explainCommand(views, in, out, err);
    return {code, out.str(), err.str()};
  }

  fs::path dir_;
};

TEST_F(SchemaFilesTest, LoadsJsonAndYamlAsWritten) {
  auto json = loadSchemaDocument(write("a.json", R"({"pattern": "^a", "$ref": "#/x"})"));
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<rapidjson::Document>>(json));
  const rapidjson::Document& j = *std::get<std::unique_ptr<rapidjson::Document>>(json);
  EXPECT_TRUE(j.HasMember("pattern"));  // not renamed, not resolved: as written
  EXPECT_TRUE(j.HasMember("$ref"));

  auto yaml = loadSchemaDocument(write("b.yaml", "type: object\nrequired: [a]\nmaximum: 3\n"));
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<rapidjson::Document>>(yaml));
  const rapidjson::Document& y = *std::get<std::unique_ptr<rapidjson::Document>>(yaml);
  EXPECT_STREQ(y["type"].GetString(), "object");
  EXPECT_EQ(y["maximum"].GetInt(), 3);
}

TEST_F(SchemaFilesTest, ErrorsNameTheFile) {
  auto missing = loadSchemaDocument(dir_ / "missing.json");
  ASSERT_TRUE(std::holds_alternative<std::string>(missing));
  EXPECT_THAT(std::get<std::string>(missing), StartsWith((dir_ / "missing.json").string() + ": "));

  auto bad = loadSchemaDocument(write("bad.json", "{\n  \"type\": }"));
  ASSERT_TRUE(std::holds_alternative<std::string>(bad));
  EXPECT_THAT(std::get<std::string>(bad),
              StartsWith((dir_ / "bad.json").string() + ":2:11: not valid JSON"));
}

TEST_F(SchemaFilesTest, ParsesASnapshotInsteadOfTheFile) {
  const fs::path file = write("s.json", R"({"type": "string"})");
  auto parsed = parseSchemaDocument(file, R"({"type": "integer"})");
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<rapidjson::Document>>(parsed));
  EXPECT_STREQ((*std::get<std::unique_ptr<rapidjson::Document>>(parsed))["type"].GetString(),
               "integer");
  auto yaml = parseSchemaDocument(dir_ / "t.yml", "type: [integer, 'null']\n");
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<rapidjson::Document>>(yaml));
}

// ---------------------------------------------------------------------------------------------
// kpipe explain

TEST_F(SchemaFilesTest, WithoutADocumentPrintsTheOutline) {
  const Run run = explain({write("s.json", R"({"type": "object", "required": ["id"]})").string()});
  EXPECT_EQ(run.code, 0);
  EXPECT_EQ(run.out, "(document): object\n  id*: any value\n(* = required)\n");
  EXPECT_EQ(run.err, "");
}

TEST_F(SchemaFilesTest, OutlineOfAYamlSchema) {
  const Run run = explain({write("s.yaml", "type: object\nproperties:\n  n: {type: integer}\n")});
  EXPECT_EQ(run.code, 0);
  EXPECT_EQ(run.out, "(document): object\n  n: integer\n(* = required)\n");
}

TEST_F(SchemaFilesTest, ValidDocument) {
  const Run run = explain({(sourceDir() / "schemas" / "user-event.json").string(),
                           write("e.json", R"({"msg_id": "6f1c8f9e-8a43-4c1e-9a6d-2b5b0e4d7c11",
                                               "user_id": "u", "type": "user.deleted",
                                               "ts": 1})")
                               .string()});
  EXPECT_EQ(run.code, 0);
  EXPECT_EQ(run.out, "valid\n");
}

TEST_F(SchemaFilesTest, EveryFailureOnItsOwnLine) {
  const Run run = explain({(sourceDir() / "schemas" / "user-event.json").string(), "-"},
                          R"({"user_id": "", "type": "user.exploded", "ts": -1})");
  EXPECT_EQ(run.code, 1);
  // In valijson's order.
  EXPECT_EQ(run.out,
            "at /ts: -1 is less than minimum 0\n"
            "at /type: \"user.exploded\" is not one of "
            "[\"user.signed_up\",\"user.updated\",\"user.deleted\"]\n"
            "at /user_id: \"\" is shorter than minLength 1\n"
            "at the root: missing required property \"msg_id\"\n");
  EXPECT_EQ(run.err, "");
}

TEST_F(SchemaFilesTest, UsageErrors) {
  for (const auto& args : std::vector<std::vector<std::string>>{{}, {""}, {"-"}, {"a", "b", "c"}}) {
    const Run run = explain(args);
    EXPECT_EQ(run.code, 2);
    EXPECT_EQ(run.err, "usage: kpipe explain SCHEMA [DOC|-]\n");
    EXPECT_EQ(run.out, "");
  }
}

TEST_F(SchemaFilesTest, SchemaThatDoesNotCompile) {
  const Run run = explain({write("s.json", R"({"pattern": "(a)\\1"})").string()});
  EXPECT_EQ(run.code, 2);
  EXPECT_THAT(run.err, StartsWith("kpipe explain: " + (dir_ / "s.json").string() + ": "));
  EXPECT_THAT(run.err, HasSubstr("back-reference"));
  EXPECT_EQ(run.out, "");
}

TEST_F(SchemaFilesTest, UnreadableOrInvalidDocument) {
  const std::string schema = write("s.json", "{}").string();
  const Run missing = explain({schema, (dir_ / "nope.json").string()});
  EXPECT_EQ(missing.code, 2);
  EXPECT_THAT(missing.err, StartsWith("kpipe explain: " + (dir_ / "nope.json").string() + ": "));

  const Run not_json = explain({schema, "-"}, "{\"a\": }");
  EXPECT_EQ(not_json.code, 2);
  EXPECT_EQ(not_json.err, "kpipe explain: standard input: not JSON at offset 6: Invalid value.\n");

  const Run invalid_utf8 = explain({schema, "-"}, "\"\xff\"");
  EXPECT_EQ(invalid_utf8.code, 2);
  EXPECT_THAT(invalid_utf8.err, HasSubstr("Invalid encoding"));
}

// Found by tests/fuzz/schema_fuzz: valijson's uniqueItems (and enum, const) checks recurse once
// per level of the document, and 100,000 nested arrays overflowed the stack. `kpipe explain`
// refuses what a pipeline refuses: more than 128 levels.
TEST_F(SchemaFilesTest, DeeplyNestedDocumentIsRefusedNotACrash) {
  const std::string schema = write("s.json", R"({"uniqueItems": true})").string();
  const std::string deep = "[" + std::string(100'000, '[') + std::string(100'000, ']') + ",[]]";
  const Run run = explain({schema, "-"}, deep);
  EXPECT_EQ(run.code, 2);
  EXPECT_EQ(run.err,
            "kpipe explain: standard input: JSON nested deeper than 128 levels (a pipeline "
            "refuses it at the decode stage)\n");

  const Run at_limit = explain({schema, "-"}, std::string(128, '[') + std::string(128, ']'));
  EXPECT_EQ(at_limit.code, 0) << at_limit.err;
  EXPECT_EQ(at_limit.out, "valid\n");
  const Run over = explain({schema, "-"}, std::string(129, '[') + std::string(129, ']'));
  EXPECT_EQ(over.code, 2);
}

}  // namespace
}  // namespace kpipe::schema
