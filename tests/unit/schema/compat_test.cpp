#include "daemon/schema/compat.h"

#include "daemon/schema/validator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kpipe::schema {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

rapidjson::Document parse(std::string_view json) {
  rapidjson::Document document;
  document.Parse(json.data(), json.size());
  if (document.HasParseError()) throw std::runtime_error("not JSON: " + std::string(json));
  return document;
}

std::vector<std::string> check(std::string_view old_json, std::string_view new_json,
                               const CompatOptions& options = {}) {
  rapidjson::Document old_schema = parse(old_json);
  rapidjson::Document new_schema = parse(new_json);
  std::vector<std::string> out;
  for (const auto& i : checkGrowthOnly(old_schema, new_schema, options)) out.push_back(i.str());
  return out;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += (out.empty() ? "" : "\n") + line;
  return out;
}

struct Case {
  const char* name;
  const char* old_schema;
  const char* new_schema;
  // "" = compatible; else a fragment of the reported incompatibilities.
  const char* expected;
  // For incompatible pairs: a document the old schema accepts and the new one rejects.
  const char* witness = nullptr;
};

// Users of the same object shape, so the pairs read as edits.
const Case kCases[] = {
    // --- growth: compatible ---------------------------------------------------------------------
    {"identical", R"({"type":"object","required":["id"],"properties":{"id":{"type":"string"}}})",
     R"({"type":"object","required":["id"],"properties":{"id":{"type":"string"}}})", ""},
    {"new optional property", R"({"type":"object","properties":{"id":{"type":"string"}}})",
     R"({"type":"object","properties":{"id":{"type":"string"},"age":{"type":"integer"}}})", ""},
    {"new property in a closed schema",
     R"({"type":"object","properties":{"id":{}},"additionalProperties":false})",
     R"({"type":"object","properties":{"id":{},"age":{"type":"integer"}},)"
     R"("additionalProperties":false})",
     ""},
    {"type widened to a list", R"({"properties":{"age":{"type":"integer"}}})",
     R"({"properties":{"age":{"type":["integer","null"]}}})", ""},
    {"integer widened to number", R"({"type":"integer"})", R"({"type":"number"})", ""},
    {"enum value added", R"({"enum":["free","pro"]})", R"({"enum":["free","pro","team"]})", ""},
    {"const widened to enum", R"({"const":"a"})", R"({"enum":["a","b"]})", ""},
    {"minimum lowered", R"({"type":"integer","minimum":18})", R"({"type":"integer","minimum":0})",
     ""},
    {"maximum removed", R"({"maximum":10})", R"({})", ""},
    {"exclusiveMinimum 0 is minimum 1 for integers", R"({"type":"integer","exclusiveMinimum":0})",
     R"({"type":"integer","minimum":1})", ""},
    {"maxLength raised", R"({"type":"string","maxLength":10})",
     R"({"type":"string","maxLength":20})", ""},
    {"required removed", R"({"required":["id","email"]})", R"({"required":["id"]})", ""},
    {"closed schema opened", R"({"properties":{"a":{}},"additionalProperties":false})",
     R"({"properties":{"a":{}}})", ""},
    {"multipleOf relaxed", R"({"multipleOf":10})", R"({"multipleOf":5})", ""},
    {"minItems lowered", R"({"type":"array","minItems":2})", R"({"type":"array","minItems":1})",
     ""},
    {"items widened", R"({"type":"array","items":{"type":"string"}})",
     R"({"type":"array","items":{"type":["string","number"]}})", ""},
    {"anyOf branch added", R"({"anyOf":[{"type":"string"},{"type":"integer"}]})",
     R"({"anyOf":[{"type":"string"},{"type":"integer"},{"type":"null"}]})", ""},
    {"type now spelled through an enum", R"({"enum":["a","b"]})",
     R"({"type":"string","enum":["a","b"]})", ""},
    {"local $ref widened",
     R"({"properties":{"plan":{"$ref":"#/definitions/plan"}},)"
     R"("definitions":{"plan":{"enum":["free"]}}})",
     R"({"properties":{"plan":{"$ref":"#/definitions/plan"}},)"
     R"("definitions":{"plan":{"enum":["free","pro"]}}})",
     ""},
    {"recursive schema unchanged",
     R"({"definitions":{"node":{"type":"object","properties":{"next":{"$ref":"#/definitions/node"}}}},)"
     R"("$ref":"#/definitions/node"})",
     R"({"definitions":{"node":{"type":"object","properties":{"next":{"$ref":"#/definitions/node"}}}},)"
     R"("$ref":"#/definitions/node"})",
     ""},
    {"not narrowed", R"({"not":{"type":["string","null"]}})", R"({"not":{"type":"null"}})", ""},
    {"old schema false", R"(false)", R"({"type":"string"})", ""},
    {"annotations changed", R"({"title":"a","description":"x","type":"string"})",
     R"({"title":"b","description":"y","examples":["z"],"type":"string"})", ""},

    // --- narrowing: incompatible ----------------------------------------------------------------
    {"type narrowed", R"({"properties":{"age":{"type":["integer","null"]}}})",
     R"({"properties":{"age":{"type":"integer"}}})",
     R"(at /properties/age: type narrowed from ["integer","null"] to "integer")",
     R"({"age":null})"},
    {"number narrowed to integer", R"({"type":"number"})", R"({"type":"integer"})",
     R"(at /: type narrowed from "number" to "integer")", "1.5"},
    {"type added", R"({})", R"({"type":"object"})",
     R"(at /: type narrowed from any type to "object")", "[]"},
    {"newly required", R"({"type":"object","required":["id"]})",
     R"({"type":"object","required":["id","email"]})", R"(at /required: "email" is newly required)",
     R"({"id":"1"})"},
    {"enum value removed", R"({"properties":{"plan":{"enum":["free","pro"]}}})",
     R"({"properties":{"plan":{"enum":["pro"]}}})", R"(at /properties/plan/enum: "free" removed)",
     R"({"plan":"free"})"},
    {"enum added", R"({"type":"string"})", R"({"type":"string","enum":["a"]})",
     R"(at /enum: enum added: only ["a"] allowed)", R"("b")"},
    {"const added", R"({"properties":{"v":{"type":"integer"}}})",
     R"({"properties":{"v":{"type":"integer","const":2}}})",
     "at /properties/v/const: const 2 added", R"({"v":1})"},
    {"schema closed", R"({"type":"object","properties":{"id":{}}})",
     R"({"type":"object","properties":{"id":{}},"additionalProperties":false})",
     "at /: additionalProperties false closes an open schema", R"({"id":1,"extra":2})"},
    {"property removed from a closed schema",
     R"({"properties":{"id":{},"name":{}},"additionalProperties":false})",
     R"({"properties":{"id":{}},"additionalProperties":false})",
     "at /properties/name: property removed from a closed schema", R"({"name":"x"})"},
    {"minimum raised", R"({"properties":{"age":{"type":"integer","minimum":0}}})",
     R"({"properties":{"age":{"type":"integer","minimum":18}}})",
     "at /properties/age/minimum: raised from 0 to 18", R"({"age":3})"},
    {"minimum added", R"({"type":"number"})", R"({"type":"number","minimum":0})",
     "at /minimum: minimum 0 added", "-1"},
    {"exclusiveMaximum tighter than maximum", R"({"maximum":10})", R"({"exclusiveMaximum":10})",
     "at /exclusiveMaximum: lowered from maximum 10 to exclusiveMaximum 10", "10"},
    {"maxLength lowered", R"({"type":"string","maxLength":20})",
     R"({"type":"string","maxLength":10})", "at /maxLength: lowered from 20 to 10",
     R"("0123456789abc")"},
    {"minLength added", R"({"type":"string"})", R"({"type":"string","minLength":1})",
     "at /minLength: minLength 1 added", R"("")"},
    {"pattern changed", R"({"type":"string","pattern":"^[a-z]+$"})",
     R"({"type":"string","pattern":"^[a-z]{2,}$"})",
     R"(at /pattern: pattern changed from "^[a-z]+$" to "^[a-z]{2,}$" (any other pattern is )"
     R"(treated as narrowing))",
     R"("a")"},
    {"pattern added", R"({"type":"string"})", R"({"type":"string","pattern":"^u-"})",
     R"(at /pattern: pattern "^u-" added)", R"("x")"},
    {"format added", R"({"properties":{"email":{"type":"string"}}})",
     R"({"properties":{"email":{"type":"string","format":"email"}}})",
     R"(at /properties/email/format: format "email" added)", R"({"email":"not an address"})"},
    {"minItems raised", R"({"type":"array","minItems":1})", R"({"type":"array","minItems":2})",
     "at /minItems: raised from 1 to 2", "[1]"},
    {"maxItems added", R"({"type":"array"})", R"({"type":"array","maxItems":1})",
     "at /maxItems: maxItems 1 added", "[1,2]"},
    {"uniqueItems added", R"({"type":"array"})", R"({"type":"array","uniqueItems":true})",
     "at /uniqueItems: uniqueItems added", "[1,1]"},
    {"type of items narrowed", R"({"properties":{"tags":{"items":{"type":["string","null"]}}}})",
     R"({"properties":{"tags":{"items":{"type":"string"}}}})",
     R"(at /properties/tags/items: type narrowed from ["string","null"] to "string")",
     R"({"tags":[null]})"},
    {"tuple item narrowed", R"({"items":[{"type":"string"},{}]})",
     R"({"items":[{"type":"string"},{"type":"integer"}]})",
     R"(at /items/1: type narrowed from any type to "integer")", R"(["a","b"])"},
    {"multipleOf changed", R"({"multipleOf":2})", R"({"multipleOf":3})",
     "at /multipleOf: changed from 2 to 3", "2"},
    {"nested object closed",
     R"({"properties":{"address":{"type":"object","properties":{"city":{}}}}})",
     R"({"properties":{"address":{"type":"object","properties":{"city":{}},)"
     R"("additionalProperties":false}}})",
     "at /properties/address: additionalProperties false closes an open schema",
     R"({"address":{"zip":"1"}})"},
    {"additionalProperties schema narrowed",
     R"({"additionalProperties":{"type":["string","null"]}})",
     R"({"additionalProperties":{"type":"string"}})",
     R"(at /additionalProperties: type narrowed from ["string","null"] to "string")",
     R"({"x":null})"},
    {"narrowed through a local $ref",
     R"({"properties":{"plan":{"$ref":"#/definitions/plan"}},)"
     R"("definitions":{"plan":{"enum":["free","pro"]}}})",
     R"({"properties":{"plan":{"$ref":"#/definitions/plan"}},)"
     R"("definitions":{"plan":{"enum":["pro"]}}})",
     R"(at /definitions/plan/enum: "free" removed)", R"({"plan":"free"})"},
    {"dependency added", R"({})", R"({"dependencies":{"card":["billing"]}})",
     R"(at /dependencies/card: "billing" is newly required when "card" is present)",
     R"({"card":1})"},
    {"anyOf branch removed", R"({"anyOf":[{"type":"string"},{"type":"integer"}]})",
     R"({"anyOf":[{"type":"string"}]})", "at /anyOf: anyOf changed: could not be proven compatible",
     "1"},
    {"oneOf changed", R"({"oneOf":[{"type":"string"},{"type":"integer"}]})",
     R"({"oneOf":[{"type":"string"},{"type":"integer"},{"type":"number"}]})",
     "at /oneOf: oneOf changed: could not be proven compatible", "1"},
    {"allOf branch added", R"({"type":"object"})",
     R"({"type":"object","allOf":[{"required":["id"]}]})",
     R"(at /allOf/0/required: "id" is newly required)", "{}"},
    {"if/then added", R"({})", R"({"if":{"required":["a"]},"then":{"required":["b"]}})",
     "at /if: if/then/else added: could not be proven compatible", R"({"a":1})"},
    {"schema false", R"({"type":"string"})", R"(false)",
     "at /: schema false rejects every value the old schema accepted", R"("x")"},
    {"$ref to another document", R"({"type":"object"})", R"({"$ref":"other.json"})",
     R"(at /: $ref "other.json" in the new schema names another document: cannot compare)"},
    {"$ref that does not resolve", R"({})", R"({"$ref":"#/definitions/missing"})",
     R"(at /: $ref "#/definitions/missing" in the new schema cannot be resolved: cannot compare)"},
};

class CompatTableTest : public ::testing::TestWithParam<Case> {};

TEST_P(CompatTableTest, Verdict) {
  const Case& c = GetParam();
  // given / when
  std::vector<std::string> found = check(c.old_schema, c.new_schema);
  // then
  if (std::string_view(c.expected).empty()) {
    EXPECT_THAT(found, IsEmpty());
  } else {
    EXPECT_THAT(joined(found), ::testing::HasSubstr(c.expected));
  }
}

// The verdict is about data: the witness is a document the old schema accepts and the new one
// rejects, checked with kpipe's own validator.
class CompatWitnessTest : public ::testing::TestWithParam<Case> {};

TEST_P(CompatWitnessTest, OldAcceptsNewRejects) {
  const Case& c = GetParam();
  auto old_compiled = compileText(c.old_schema, "old.json");
  auto new_compiled = compileText(c.new_schema, "new.json");
  ASSERT_TRUE(std::holds_alternative<SchemaPtr>(old_compiled));
  ASSERT_TRUE(std::holds_alternative<SchemaPtr>(new_compiled));
  rapidjson::Document witness = parse(c.witness);
  Validator validator;
  std::vector<Failure> failures;
  EXPECT_TRUE(validator.validate(*std::get<SchemaPtr>(old_compiled), witness, &failures))
      << explain(failures);
  EXPECT_FALSE(validator.validate(*std::get<SchemaPtr>(new_compiled), witness, nullptr));
}

std::string caseName(const ::testing::TestParamInfo<Case>& info) {
  std::string name;
  for (char ch : std::string_view(info.param.name)) {
    name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  }
  return name;
}

std::vector<Case> casesWithWitness() {
  std::vector<Case> out;
  for (const Case& c : kCases) {
    if (c.witness != nullptr) out.push_back(c);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Pairs, CompatTableTest, ::testing::ValuesIn(kCases), caseName);
INSTANTIATE_TEST_SUITE_P(Pairs, CompatWitnessTest, ::testing::ValuesIn(casesWithWitness()),
                         caseName);

TEST(CompatTest, ReportsEveryIncompatibilityWithItsPointer) {
  // given: a user schema with several edits at once
  const char* old_schema = R"({
    "type": "object", "required": ["id"],
    "properties": {"id": {"type": "string"}, "age": {"type": ["integer", "null"], "minimum": 0},
                   "plan": {"enum": ["free", "pro"]}, "name": {"type": "string"}}})";
  const char* new_schema = R"({
    "type": "object", "required": ["id", "email"], "additionalProperties": false,
    "properties": {"id": {"type": "string"}, "age": {"type": "integer", "minimum": 18},
                   "plan": {"enum": ["pro", "team"]}, "email": {"type": "string"}}})";

  // when / then
  EXPECT_THAT(
      check(old_schema, new_schema),
      ElementsAre(R"(at /required: "email" is newly required)",
                  R"(at /properties/age: type narrowed from ["integer","null"] to "integer")",
                  "at /properties/age/minimum: raised from 0 to 18",
                  "at /properties/name: property removed from a closed schema",
                  R"(at /properties/plan/enum: "free" removed)",
                  "at /: additionalProperties false closes an open schema"));
}

TEST(CompatTest, FollowsReferencesToOtherDocumentsThroughTheResolver) {
  // given: both versions refer to address.json, whose new version requires a zip code
  rapidjson::Document old_address = parse(R"({"type":"object","required":["city"]})");
  rapidjson::Document new_address = parse(R"({"type":"object","required":["city","zip"]})");
  CompatOptions options;
  options.old_base = "old/user.json";
  options.new_base = "new/user.json";
  options.resolve_old = [&](const std::string& base, const std::string& uri) {
    EXPECT_EQ(base, "old/user.json");
    return uri == "address.json" ? ReferencedDocument{&old_address, "old/address.json", ""}
                                 : ReferencedDocument{nullptr, "", "no such file"};
  };
  options.resolve_new = [&](const std::string&, const std::string& uri) {
    return uri == "address.json" ? ReferencedDocument{&new_address, "new/address.json", ""}
                                 : ReferencedDocument{nullptr, "", "no such file"};
  };
  const char* schema = R"({"properties":{"address":{"$ref":"address.json"}}})";

  // when / then
  EXPECT_THAT(check(schema, schema, options),
              ElementsAre(R"(at address.json#/required: "zip" is newly required)"));
  EXPECT_THAT(check(schema, R"({"properties":{"address":{"$ref":"gone.json"}}})", options),
              ElementsAre(R"(at /properties/address: $ref "gone.json" in the new schema: no such )"
                          "file: cannot compare"));
}

TEST(CompatTest, RecursiveSchemaNarrowedDeepDown) {
  const char* old_schema =
      R"({"definitions":{"node":{"properties":{"v":{"type":["integer","null"]},)"
      R"("next":{"$ref":"#/definitions/node"}}}},"$ref":"#/definitions/node"})";
  const char* new_schema =
      R"({"definitions":{"node":{"properties":{"v":{"type":"integer"},)"
      R"("next":{"$ref":"#/definitions/node"}}}},"$ref":"#/definitions/node"})";
  EXPECT_THAT(check(old_schema, new_schema),
              ElementsAre(R"(at /definitions/node/properties/v: type narrowed from )"
                          R"(["integer","null"] to "integer")"));
}

}  // namespace
}  // namespace kpipe::schema
