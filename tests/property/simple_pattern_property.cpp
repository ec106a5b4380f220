// SimplePattern (daemon/schema/simple_pattern.h) against std::regex with pattern.cpp's flags:
// random patterns from the supported grammar over a small alphabet (so that matches are
// frequent), random subjects over the same alphabet plus bytes the classes treat specially.
// Every generated pattern must compile, and give std::regex's answer on every subject.

#include "daemon/schema/simple_pattern.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <regex>
#include <string>
#include <vector>

namespace kpipe::schema::detail {
namespace {

const std::vector<std::string> kAtoms = {
    "a",    "b",     "-",      "\\.",    ".",      "\\d",      "\\D",   "\\w",   "\\W",
    "\\s",  "\\S",   "\\n",    "\\-",    "[ab]",   "[^ab]",    "[a-c]", "[0-9]", "[\\d-]",
    "[-a]", "[\\s]", "[^\\w]", "[a\\]]", "[\\^b]", "[\\n\\r]", "1",     "\\$",   "\\^",
};
const std::vector<std::string> kQuantifiers = {
    "", "", "", "?", "*", "+", "{2}", "{0,2}", "{1,}", "{2,3}", "*?", "+?", "??", "{0}", "{3}"};
const std::vector<char> kSubjectBytes = {'a', 'b', 'c',  '-',  '.',    '1',    '9',
                                         '_', ' ', '\n', '\r', '\t',   '\v',   '\f',
                                         ']', '^', '$',  'A',  '\x7f', '\xc3', '\xff'};

rc::Gen<std::string> genPattern() {
  return rc::gen::exec([] {
    std::string pattern;
    if (*rc::gen::arbitrary<bool>()) pattern += '^';
    const int atoms = *rc::gen::inRange(0, 6);
    for (int i = 0; i < atoms; ++i) {
      pattern += *rc::gen::elementOf(kAtoms);
      pattern += *rc::gen::elementOf(kQuantifiers);
    }
    if (*rc::gen::arbitrary<bool>()) pattern += '$';
    return pattern;
  });
}

rc::Gen<std::string> genSubject() {
  return rc::gen::map(
      rc::gen::container<std::vector<char>>(rc::gen::elementOf(kSubjectBytes)),
      [](const std::vector<char>& bytes) { return std::string(bytes.begin(), bytes.end()); });
}

RC_GTEST_PROP(SimplePatternProperty, AgreesWithStdRegex, ()) {
  const std::string pattern = *genPattern();
  const std::optional<SimplePattern> simple = SimplePattern::compile(pattern);
  RC_ASSERT(simple.has_value());
  const std::regex reference(pattern, std::regex::ECMAScript | std::regex_constants::__polynomial);
  const auto subjects = *rc::gen::container<std::vector<std::string>>(20, genSubject());
  for (const std::string& subject : subjects) {
    RC_ASSERT(simple->search(subject) == std::regex_search(subject, reference));
  }
}

}  // namespace
}  // namespace kpipe::schema::detail
