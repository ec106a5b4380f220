// `pattern` and `patternProperties` must neither crash nor hang the daemon (valijson's own
// std::regex overflows the stack on `^(a|b)*$` at ~11k characters and is exponential on
// `^(a+)+$`), and must still mean what draft-07 says.

#include "daemon/schema/validator.h"

#include "tests/unit/schema/test_util.h"
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace kpipe::schema {
namespace {

using testing::compileOrThrow;
using testing::explainOf;
using ::testing::HasSubstr;

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

TEST(PatternSafetyTest, LongStringAgainstAlternationDoesNotCrash) {
  // given: 20,000 characters, which overflow an 8 MiB stack with valijson's std::regex
  const SchemaPtr schema = compileOrThrow(R"({"pattern": "^(a|b)*$"})");
  Validator validator;

  // when
  const std::string result = explainOf(validator, *schema, quoted(std::string(20000, 'a')));

  // then: refused, with the reason
  EXPECT_EQ(result, "at the root: string too long for pattern check (20000 > 4096 bytes)");
}

TEST(PatternSafetyTest, StringsUpToTheLimitAreMatched) {
  const SchemaPtr schema = compileOrThrow(R"({"pattern": "^(a|b)*$"})");
  Validator validator;
  EXPECT_EQ(explainOf(validator, *schema, quoted(std::string(4096, 'a'))), "");
  EXPECT_THAT(explainOf(validator, *schema, quoted(std::string(4095, 'a') + "c")),
              HasSubstr("does not match pattern \"^(a|b)*$\""));
}

TEST(PatternSafetyTest, NestedQuantifiersDoNotBacktrackExponentially) {
  // given: ~15 s with valijson's std::regex at 30 characters
  const SchemaPtr schema = compileOrThrow(R"({"pattern": "^(a+)+$"})");
  Validator validator;
  const auto start = std::chrono::steady_clock::now();

  // when
  const std::string short_result =
      explainOf(validator, *schema, quoted(std::string(30, 'a') + "!"));
  const std::string long_result =
      explainOf(validator, *schema, quoted(std::string(4000, 'a') + "!"));

  // then
  EXPECT_THAT(short_result, HasSubstr("does not match pattern"));
  EXPECT_THAT(long_result, HasSubstr("does not match pattern"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(PatternSemanticsTest, SearchNotFullMatch) {
  // draft-07: a pattern matches anywhere unless anchored. Both the short-subject path and the
  // long-subject path (more than 128 bytes) must agree.
  for (const size_t padding : {size_t{3}, size_t{300}}) {
    const std::string pad(padding, 'z');
    SCOPED_TRACE(padding);
    EXPECT_EQ(explainOf(R"({"pattern": "b"})", quoted(pad + "abc" + pad)), "");
    EXPECT_NE(explainOf(R"({"pattern": "^b"})", quoted(pad + "b")), "");
    EXPECT_EQ(explainOf(R"({"pattern": "^z"})", quoted(pad + "b")), "");
    EXPECT_NE(explainOf(R"({"pattern": "b$"})", quoted("b" + pad)), "");
    EXPECT_EQ(explainOf(R"({"pattern": "b$"})", quoted(pad + "b")), "");
    EXPECT_EQ(explainOf(R"({"pattern": "a|q"})", quoted(pad + "q" + pad)), "");
    EXPECT_EQ(explainOf(R"({"pattern": "\\bword\\b"})", quoted(pad + " word " + pad)), "");
    EXPECT_NE(explainOf(R"({"pattern": "\\bword\\b"})", quoted(pad + "swordfish" + pad)), "");
    // Newlines are ordinary characters for the wrapper.
    EXPECT_EQ(explainOf(R"({"pattern": "x"})", quoted(pad + "\\n\\nx\\n" + pad)), "");
  }
}

TEST(PatternSemanticsTest, OnlyAppliesToStrings) {
  EXPECT_EQ(explainOf(R"({"pattern": "^a$"})", "5"), "");
  EXPECT_EQ(explainOf(R"({"pattern": "^a$"})", "{}"), "");
}

TEST(PatternSemanticsTest, PatternOutsideSchemaPositionsIsData) {
  // `pattern` as a property name, and inside enum/const values, is not the keyword.
  constexpr const char* kSchema = R"({
    "required": ["pattern"],
    "properties": {"pattern": {"type": "string"}, "rule": {"enum": [{"pattern": "x"}]}},
    "definitions": {"pattern": {"type": "integer"}}
  })";
  EXPECT_EQ(explainOf(kSchema, R"({"pattern": "anything", "rule": {"pattern": "x"}})"), "");
  EXPECT_THAT(explainOf(kSchema, R"({"pattern": "p", "rule": {"pattern": "y"}})"),
              HasSubstr("at /rule: {\"pattern\":\"y\"} is not one of [{\"pattern\":\"x\"}]"));
}

TEST(PatternSemanticsTest, PatternsInEveryKindOfSubschemaAreChecked) {
  constexpr const char* kSchema = R"({
    "definitions": {"id": {"pattern": "^i"}},
    "properties": {
      "a": {"items": {"pattern": "^a"}},
      "b": {"anyOf": [{"pattern": "^b"}]},
      "c": {"$ref": "#/definitions/id"},
      "d": {"additionalProperties": {"pattern": "^d"}}
    }
  })";
  EXPECT_EQ(explainOf(kSchema, R"({"a": ["a1"], "b": "b1", "c": "i1", "d": {"k": "d1"}})"), "");
  EXPECT_EQ(explainOf(kSchema, R"({"a": ["x"], "b": "b1", "c": "x", "d": {"k": "x"}})"),
            "at /a/0: \"x\" does not match pattern \"^a\"; "
            "at /c: \"x\" does not match pattern \"^i\"; "
            "at /d/k: \"x\" does not match pattern \"^d\"");
}

TEST(PatternPropertiesTest, WorksForOrdinaryNames) {
  constexpr const char* kSchema =
      R"({"patternProperties": {"^n_": {"type": "integer"}}, "additionalProperties": false})";
  EXPECT_EQ(explainOf(kSchema, R"({"n_a": 1})"), "");
  EXPECT_EQ(explainOf(kSchema, R"({"n_a": "x"})"), "at /n_a: \"x\" is not of type \"integer\"");
}

TEST(PatternPropertiesTest, LongPropertyNamesAreRefusedBeforeValijsonSeesThem) {
  // given: a name that would overflow the stack in valijson's patternProperties matching
  const SchemaPtr schema =
      compileOrThrow(R"({"properties": {"inner": {"patternProperties": {"^(a|b)*$": true}}}})");
  const std::string name(20000, 'a');
  Validator validator;

  // when
  const std::string result = explainOf(
      validator, *schema, R"({"list": [0, {"ok": 1}, {")" + name + R"(": 1}], "inner": {}})");

  // then
  EXPECT_THAT(result, HasSubstr("at /list/2: property name \"aaa"));
  EXPECT_THAT(result,
              HasSubstr("(20000 bytes) is too long for a patternProperties check (> 4096)"));
}

TEST(PatternPropertiesTest, DeepDocumentsAreScannedWithoutRecursion) {
  const SchemaPtr schema = compileOrThrow(R"({"patternProperties": {"^x": true}})");
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  Validator validator;
  EXPECT_EQ(explainOf(validator, *schema, deep), "");
}

TEST(PatternPropertiesTest, LongNamesAreFineWithoutPatternProperties) {
  EXPECT_EQ(explainOf(R"({"type": "object"})", R"({")" + std::string(20000, 'a') + R"(": 1})"), "");
}

}  // namespace
}  // namespace kpipe::schema
