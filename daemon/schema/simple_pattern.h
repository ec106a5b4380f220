#pragma once
// Internal to daemon/schema: a fast matcher for the `pattern`s most schemas use (ids, codes,
// dates: `^[0-9a-f]{8}-[0-9a-f]{4}-...$`), with exactly the meaning pattern.cpp's std::regex
// gives them.
//
// libstdc++'s polynomial std::regex executor allocates on every match and costs about 1.5 µs
// for a UUID: more than the rest of a message's validation. Most real patterns are a plain
// sequence of characters and character classes with quantifiers, and such a pattern is a
// position automaton of at most 64 positions: one bit per position, one 64-bit word of state,
// a table of 256 masks, and a step per subject byte without allocation or backtracking
// (Glushkov's construction, run bit-parallel as in Shift-And).
//
// Supported: `^` first and `$` last; literal bytes; `.` (any byte but \n and \r, as
// std::regex's ECMAScript grammar has it); escapes \d \D \w \W \s \S \t \n \v \f \r and escaped
// punctuation; bracket classes of ASCII characters, ranges and those escapes, negated or not;
// quantifiers ? * + {n} {n,} {n,m} (greedy or lazy: the same for a yes/no answer), when the
// expansion has at most 64 positions. Anything else (groups, alternation, assertions,
// back-references, \u escapes, non-ASCII in a class, ...) is not compiled here: the caller
// falls back to std::regex. Byte-wise, like the std::regex it stands in for.
//
// tests/unit/schema/simple_pattern_test.cpp and tests/property/simple_pattern_property.cpp
// check it against std::regex with pattern.cpp's flags.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kpipe::schema::detail {

class SimplePattern {
 public:
  // Nullopt when the pattern is outside the supported subset (or not a valid regex).
  static std::optional<SimplePattern> compile(std::string_view pattern);

  // Whether the pattern matches somewhere in `subject` (regex_search semantics).
  bool search(std::string_view subject) const;

  int positions() const { return positions_; }

 private:
  std::array<uint64_t, 256> accepts_{};  // per byte: the positions whose class contains it
  std::array<uint64_t, 64> follow_{};    // per position: the positions that may come next
  uint64_t first_ = 0;                   // positions that may match the first byte
  uint64_t last_ = 0;                    // positions after which the pattern may end
  bool empty_ = false;                   // the pattern matches the empty string
  bool anchored_start_ = false;
  bool anchored_end_ = false;
  int positions_ = 0;
};

}  // namespace kpipe::schema::detail
