// The fast pattern matcher must give std::regex's answer (with pattern.cpp's flags) on every
// pattern it accepts, and accept the patterns schemas commonly use. The property test
// (tests/property/simple_pattern_property.cpp) checks random patterns; these are the cases
// worth naming.

#include "daemon/schema/simple_pattern.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

namespace kpipe::schema::detail {
namespace {

bool reference(const std::string& pattern, const std::string& subject) {
  const std::regex re(pattern, std::regex::ECMAScript | std::regex_constants::__polynomial);
  return std::regex_search(subject, re);
}

const std::vector<std::string> kSubjects = {
    "",
    "a",
    "b",
    "ab",
    "abc",
    "aaa",
    "aab",
    "ba",
    "abab",
    "12",
    "2024-01-31",
    "x2024-01-31y",
    "550e8400-e29b-41d4-a716-446655440000",
    "550E8400-E29B-41D4-A716-446655440000",
    "550e8400-e29b-41d4-a716-44665544000",
    "550e8400e29b41d4a716446655440000",
    "a\nb",
    "a\rb",
    "\n",
    " \t",
    "caf\xc3\xa9",
    "\xff",
    "a.b",
    "a-b",
    "A_z9",
    "-",
    "]",
    "^$",
    "USD",
    "usd",
    "+1 555 0100",
};

const std::vector<std::string> kPatterns = {
    "",
    "^",
    "$",
    "^$",
    "a",
    "^a",
    "a$",
    "^a$",
    "ab",
    "^ab$",
    "a?",
    "^a?$",
    "^a*$",
    "^a+$",
    "a+b",
    "^a{2}$",
    "^a{2,}$",
    "^a{1,3}$",
    "^a{0,2}b?$",
    "a{0}",
    "^a{0}$",
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "^\\d{4}-\\d{2}-\\d{2}$",
    "\\d{4}-\\d\\d",
    "^[A-Z]{3}$",
    "^[^a]*$",
    "[^a-z]",
    "^\\w+$",
    "\\W",
    "\\s",
    "^\\S+$",
    "\\D",
    ".",
    "^.$",
    "^.*$",
    "a.b",
    "a\\.b",
    "\\-",
    "[-a]",
    "[a-]",
    "[\\]]",
    "[\\d-]",
    "[\\s\\d]+",
    "^\\+?[0-9 ]+$",
    "\\n",
    "[\\n\\r]",
    "\\t",
    "^a*?b",
    "^a+?$",
    "^a??b",
    "^a{1,2}?$",
    "caf\xc3\xa9",
    "^[a-z]*a[a-z]*$",
    "^[ab]*b[ab]{2}$",
    "b*$",
    "^\\^\\$$",
    "^\\$",
};

TEST(SimplePatternTest, AgreesWithStdRegex) {
  for (const std::string& pattern : kPatterns) {
    const std::optional<SimplePattern> simple = SimplePattern::compile(pattern);
    ASSERT_TRUE(simple.has_value()) << "not compiled: " << pattern;
    for (const std::string& subject : kSubjects) {
      EXPECT_EQ(simple->search(subject), reference(pattern, subject))
          << "pattern " << pattern << " subject \"" << subject << "\"";
    }
  }
}

TEST(SimplePatternTest, LeavesEverythingElseToStdRegex) {
  for (const char* pattern : {
           "(a)",        "a|b",     "(?:a)",     "a(?=b)",  "\\b",         "\\B",    "\\1",
           "\\u00e9",    "\\x41",   "\\cA",      "\\0",     "[[:alpha:]]", "[]",     "[^]",
           "[\xc3\xa9]", "[\\d-z]", "a**",       "a{2}{3}", "a*+",         "*a",     "+",
           "?",          "{2}",     "a{",        "a{2",     "a{,2}",       "a{3,2}", "]",
           "}",          "[a",      "[z-a]",     "a^",      "a$b",         "\\",     "\\q",
           "[\\q]",      "a{1001}", "[a-z]{65}", "\\e",
       }) {
    EXPECT_FALSE(SimplePattern::compile(pattern).has_value()) << pattern;
  }
}

TEST(SimplePatternTest, SixtyFourPositionsAtMost) {
  EXPECT_TRUE(SimplePattern::compile("^[a-z]{64}$").has_value());
  EXPECT_FALSE(SimplePattern::compile("^[a-z]{64}x$").has_value());
  const auto uuid = SimplePattern::compile(
      "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$");
  ASSERT_TRUE(uuid.has_value());
  EXPECT_EQ(uuid->positions(), 36);
}

}  // namespace
}  // namespace kpipe::schema::detail
