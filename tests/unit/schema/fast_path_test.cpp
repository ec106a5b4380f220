// The fast path (daemon/schema/fast_path.h) against the full validator on the cases where the
// two could plausibly part: how integers, big numbers, NUL bytes and counts are read, and the
// combinators. The official suite (official_suite_test.cpp) checks every draft-07 keyword too.

#include "daemon/schema/validator.h"

#include "tests/unit/schema/test_util.h"
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace kpipe::schema {
namespace {

using testing::compileOrThrow;
using testing::parseOrThrow;

struct Case {
  std::string schema;
  std::string document;
  bool valid;
};

const std::vector<Case> kCases = {
    // kpipe's integer type: 1.0 is an integer, 1.5 is not; big unsigned numbers are numbers
    {R"({"type": "integer"})", "1.0", true},
    {R"({"type": "integer"})", "1.5", false},
    {R"({"type": "integer"})", "18446744073709551615", true},
    {R"({"type": "integer"})", "\"1\"", false},
    {R"({"type": ["integer", "null"]})", "null", true},
    {R"({"type": ["number", "string"]})", "true", false},
    {R"({"type": "object"})", "[]", false},
    // bounds read every number as a double, including those over INT64_MAX
    {R"({"maximum": 100})", "9223372036854775808", false},
    {R"({"minimum": 0})", "18446744073709551615", true},
    {R"({"exclusiveMaximum": 3})", "3", false},
    {R"({"exclusiveMinimum": 3})", "3.0001", true},
    {R"({"maximum": 3, "minimum": 1})", "\"10\"", true},
    // lengths count code points, up to a NUL (valijson reads a C string)
    {R"({"maxLength": 2})", "\"\u00e9\u00e9\"", true},
    {R"({"minLength": 3})", "\"ab\\u0000cd\"", false},
    {R"({"maxLength": 2})", "\"ab\\u0000cd\"", true},
    // objects
    {R"({"required": ["a"], "properties": {"a": {"type": "string"}}})", R"({"a": "x"})", true},
    {R"({"required": ["a"]})", R"({"b": 1})", false},
    {R"({"required": ["a"]})", "[1]", true},
    {R"({"properties": {"a": {"const": "x"}}, "additionalProperties": false})", R"({"a": "x"})",
     true},
    {R"({"properties": {"a": {"const": "x"}}, "additionalProperties": false})",
     R"({"a": "x", "b": 1})", false},
    {R"({"additionalProperties": {"type": "integer"}})", R"({"a": 1, "b": "2"})", false},
    {R"({"minProperties": 2, "maxProperties": 2})", R"({"a": 1})", false},
    // strings: pattern (the size limit too) and format
    {R"({"pattern": "^[0-9a-f]{4}$"})", "\"00ff\"", true},
    {R"({"pattern": "^[0-9a-f]{4}$"})", "\"00fg\"", false},
    {R"({"pattern": "a"})", "\"" + std::string(5000, 'a') + "\"", false},
    {R"({"format": "date"})", "\"2023-02-29\"", false},
    {R"({"format": "date"})", "17", true},
    {R"({"format": "not-a-checked-format"})", "\"anything\"", true},
    // arrays
    {R"({"items": {"type": "string"}, "minItems": 1})", R"(["a", "b"])", true},
    {R"({"items": {"type": "string"}})", R"(["a", 2])", false},
    {R"({"maxItems": 1})", "[1, 2]", false},
    // const and enum of strings, booleans, null
    {R"({"const": "comment.created"})", "\"comment.created\"", true},
    {R"({"const": "a"})", "\"a\\u0000\"", false},
    {R"({"enum": ["a", true, null]})", "null", true},
    {R"({"enum": ["a", true, null]})", "false", false},
    // combinators
    {R"({"oneOf": [{"type": "string"}, {"maxLength": 3}]})", "\"ab\"", false},
    {R"({"oneOf": [{"type": "string"}, {"maxLength": 3}]})", "\"abcd\"", true},
    {R"({"anyOf": [{"type": "string"}, {"type": "null"}]})", "1", false},
    {R"({"allOf": [{"minLength": 1}, {"maxLength": 1}]})", "\"ab\"", false},
    {R"({"not": {"type": "null"}})", "null", false},
    {R"({"if": {"const": "a"}, "then": {"maxLength": 0}, "else": {"minLength": 2}})", "\"a\"",
     false},
    {R"({"if": {"const": "a"}, "then": {"maxLength": 0}, "else": {"minLength": 2}})", "\"b\"",
     false},
    {R"({"then": {"type": "null"}})", "1", true},
    {"true", "1", true},
    {"false", "1", false},
    {R"({"properties": {"a": false}})", R"({"a": 1})", false},
};

TEST(FastPathTest, AgreesWithTheFullValidator) {
  for (const Case& c : kCases) {
    const SchemaPtr schema = compileOrThrow(c.schema);
    const rapidjson::Document document = parseOrThrow(c.document);
    const std::optional<bool> fast = fastPathVerdict(*schema, document);
    ASSERT_TRUE(fast.has_value()) << "no fast path for " << c.schema;
    EXPECT_EQ(*fast, c.valid) << c.schema << " on " << c.document.substr(0, 60);
    Validator validator;
    std::vector<Failure> failures;
    EXPECT_EQ(validator.validate(*schema, document, &failures), c.valid)
        << c.schema << " on " << c.document.substr(0, 60) << ": " << explain(failures);
  }
}

TEST(FastPathTest, LeavesOtherKeywordsToValijson) {
  for (const char* schema : {
           R"({"$ref": "#/definitions/a", "definitions": {"a": {}}})",
           R"({"multipleOf": 2})",
           R"({"patternProperties": {"^a": {}}})",
           R"({"enum": [1, 2]})",
           R"({"const": {"a": 1}})",
           R"({"items": [{"type": "string"}]})",
           R"({"uniqueItems": true})",
           R"({"contains": {"type": "string"}})",
           R"({"propertyNames": {"maxLength": 3}})",
           R"({"dependencies": {"a": ["b"]}})",
           R"({"properties": {"a": {"multipleOf": 3}}})",
       }) {
    const SchemaPtr compiled = compileOrThrow(schema);
    EXPECT_FALSE(fastPathVerdict(*compiled, parseOrThrow("1")).has_value()) << schema;
  }
}

TEST(FastPathTest, AnnotationsDoNotPreventIt) {
  const SchemaPtr schema = compileOrThrow(
      R"({"$schema": "http://json-schema.org/draft-07/schema#", "$id": "https://x.invalid/s",
          "title": "t", "description": "d", "default": 1, "examples": [1], "$comment": "c",
          "x-owner": "team", "type": "integer"})");
  EXPECT_EQ(fastPathVerdict(*schema, parseOrThrow("1")), true);
}

}  // namespace
}  // namespace kpipe::schema
