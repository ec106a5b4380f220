// Inputs tests/fuzz/schema_fuzz found to crash or hang the schema compiler, kept as regressions
// (their bytes are also in tests/fuzz/corpus/schema_fuzz/regression_*).

#include "daemon/schema/validator.h"

#include "tests/unit/schema/test_util.h"
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <variant>

namespace kpipe::schema {
namespace {

using testing::compileErrorOf;
using testing::compileOrThrow;
using testing::explainOf;
using ::testing::HasSubstr;

std::string nestedArrays(int depth) {
  return std::string(static_cast<size_t>(depth), '[') +
         std::string(static_cast<size_t>(depth), ']');
}

std::string yamlCompileError(const std::string& yaml) {
  auto result = compileText(yaml, "test.yaml");
  if (const auto* error = std::get_if<CompileError>(&result)) return error->message;
  return "compiled";
}

// valijson copies enum and const values recursively when it compiles them: a const of 100,000
// nested arrays overflowed the stack of `kpipe check` (and of a running daemon on reload).
// The schema walk skipped data values; they are now refused beyond the schema depth limit.
TEST(FuzzRegressionTest, DeeplyNestedDataValuesAreRefusedNotACrash) {
  for (const char* keyword : {"const", "enum", "default", "examples"}) {
    const std::string value = std::string(keyword) == "enum" || std::string(keyword) == "examples"
                                  ? "[" + nestedArrays(100'000) + "]"
                                  : nestedArrays(100'000);
    EXPECT_EQ(compileErrorOf("{\"" + std::string(keyword) + "\": " + value + "}"),
              "test.json: schema is not supported/invalid: the value of \"" + std::string(keyword) +
                  "\" nests deeper than 256 levels")
        << keyword;
  }
}

TEST(FuzzRegressionTest, NestedDataValuesWithinTheLimitStillWork) {
  const std::string value = nestedArrays(200);
  EXPECT_EQ(explainOf("{\"const\": " + value + "}", value), "");
  EXPECT_THAT(explainOf("{\"enum\": [" + value + "]}", "[]"), HasSubstr("is not one of"));
}

// A YAML alias converts to a copy of what its anchor names: nine levels of ten aliases each (a
// 400-byte file) expanded to 10^9 values, and `kpipe check` ran until memory was exhausted.
TEST(FuzzRegressionTest, YamlAliasBombIsRefusedQuickly) {
  std::string yaml = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < 9; ++i) {
    const std::string previous = "*l" + std::to_string(i - 1);
    yaml += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) yaml += (j == 0 ? "" : ", ") + previous;
    yaml += "]\n";
  }
  yaml += "type: object\n";
  const auto start = std::chrono::steady_clock::now();
  const std::string error = yamlCompileError(yaml);
  EXPECT_THAT(error, HasSubstr("test.yaml:"));
  EXPECT_THAT(error, HasSubstr(": expands to more than 100000 values through aliases (*name)"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(FuzzRegressionTest, YamlAliasesThatStaySmallStillWork) {
  auto result = compileText(
      "definitions:\n  id: &id {type: string, minLength: 1}\n"
      "properties:\n  a: *id\n  b: *id\n",
      "test.yaml");
  ASSERT_TRUE(std::holds_alternative<SchemaPtr>(result)) << std::get<CompileError>(result).message;
  Validator validator;
  EXPECT_EQ(explainOf(validator, *std::get<SchemaPtr>(result), R"({"a": "x", "b": ""})"),
            "at /b: \"\" is shorter than minLength 1");
}

// valijson's own multipleOf with an integer divisor took any divisor: 0 (then every non-zero
// number divided by zero, SIGFPE, on the first message) or -1 (INT64_MIN % -1: SIGFPE, from a
// message); it converted other numbers to int64 first (1e307: undefined behaviour, found by the
// fuzzer under UBSan; 2.5 "a multiple of 2"). kpipe checks every multipleOf now.
TEST(FuzzRegressionTest, MultipleOfMustBeGreaterThanZero) {
  for (const char* divisor : {"0", "-1", "-0.5", "0.0", "\"2\"", "null"}) {
    EXPECT_EQ(compileErrorOf(std::string(R"({"multipleOf": )") + divisor + "}"),
              "test.json: schema is not supported/invalid: \"multipleOf\" must be a number "
              "greater than 0")
        << divisor;
  }
}

TEST(FuzzRegressionTest, MultipleOfAnIntegerIsExact) {
  EXPECT_EQ(explainOf(R"({"multipleOf": 28})", "1e307"),
            "at the root: 1e307 is not a multiple of 28");
  EXPECT_EQ(explainOf(R"({"multipleOf": 2})", "2.5"), "at the root: 2.5 is not a multiple of 2");
  EXPECT_EQ(explainOf(R"({"multipleOf": 2})", "4.0"), "");
  EXPECT_EQ(explainOf(R"({"multipleOf": 2})", "-9223372036854775808"), "");
  EXPECT_EQ(explainOf(R"({"multipleOf": 3})", "-9223372036854775808"),
            "at the root: -9223372036854775808 is not a multiple of 3");
  EXPECT_EQ(explainOf(R"({"multipleOf": 7})", "9223372036854775807"),
            "");                                                    // 7 x 1317624576693539401
  EXPECT_EQ(explainOf(R"({"multipleOf": 2})", "9007199254740993"),  // 2^53 + 1: odd
            "at the root: 9007199254740993 is not a multiple of 2");
  EXPECT_EQ(explainOf(R"({"multipleOf": 1e20})", "0"), "");
  EXPECT_EQ(explainOf(R"({"multipleOf": 1e20})", "5"),
            "at the root: 5 is not a multiple of 100000000000000000000.0");
  EXPECT_EQ(explainOf(R"({"multipleOf": 1e20})", "2e20"), "");
}

// valijson read an unsigned integer above INT64_MAX as a negative int64: a message with
// 9223372036854775808 passed "maximum": 100. Such numbers are read as doubles now.
TEST(FuzzRegressionTest, IntegersAboveInt64MaxAreNotNegative) {
  EXPECT_EQ(explainOf(R"({"maximum": 100})", "9223372036854775808"),
            "at the root: 9223372036854775808 is greater than maximum 100");
  EXPECT_EQ(explainOf(R"({"exclusiveMaximum": 5})", "18446744073709551615"),
            "at the root: 18446744073709551615 is not less than exclusiveMaximum 5");
  EXPECT_EQ(explainOf(R"({"type": "integer", "minimum": 0})", "18446744073709551615"), "");
  EXPECT_EQ(explainOf(R"({"const": -1})", "18446744073709551615"),
            "at the root: 18446744073709551615 is not equal to const -1");
  EXPECT_EQ(explainOf(R"({"enum": [18446744073709551615]})", "-1"),
            "at the root: -1 is not one of [18446744073709551615]");
  EXPECT_EQ(explainOf(R"({"type": ["integer", "string"]})", "18446744073709551615"), "");
  EXPECT_EQ(explainOf(R"({"type": "number", "maximum": 1e20})", "18446744073709551615"), "");
}

// libstdc++ 12 reads a repetition count into a long without overflow checks: the fuzzer's
// `{2,18446744073709551616}` is undefined behaviour (UBSan), and a count near LONG_MAX built a
// wrong automaton: `a{9223372036854775807}` matched "aa". Counts over 100,000 are refused.
TEST(FuzzRegressionTest, HugeRepetitionCountsAreRefused) {
  for (const char* pattern : {"^(a{2,18446744073709551616}){3}b?$", "a{9223372036854775807}",
                              "a{18446744073709551617}", "x{1,100001}", "x{100001,}"}) {
    EXPECT_THAT(compileErrorOf(std::string(R"({"pattern": ")") + pattern + "\"}"),
                HasSubstr("repeats more than 100000 times"))
        << pattern;
    EXPECT_THAT(compileErrorOf(std::string(R"({"patternProperties": {")") + pattern + "\": {}}}"),
                HasSubstr("repeats more than 100000 times"))
        << pattern;
  }
}

TEST(FuzzRegressionTest, RepetitionCountsWithinTheLimitAndLiteralBracesStillWork) {
  EXPECT_EQ(explainOf(R"({"pattern": "^a{2,3}$"})", R"("aaa")"), "");
  EXPECT_EQ(explainOf(R"({"pattern": "^a{2,3}$"})", R"("aaaa")"),
            "at the root: \"aaaa\" does not match pattern \"^a{2,3}$\"");
  // Digits after an escaped brace or inside a class are not counts.
  EXPECT_EQ(explainOf(R"({"pattern": "^\\{123456789012\\}$"})", R"("{123456789012}")"), "");
  EXPECT_EQ(explainOf(R"({"pattern": "^[{]123456789012$"})", R"("{123456789012")"), "");
  EXPECT_EQ(compileErrorOf(R"({"pattern": "^a{1000,5000}$"})"), "compiled");
  // At the limit, libstdc++ itself says no (its automaton would be too large), as before.
  EXPECT_THAT(compileErrorOf(R"({"pattern": "a{100000}"})"), HasSubstr("NFA states exceeds limit"));
}

}  // namespace
}  // namespace kpipe::schema
