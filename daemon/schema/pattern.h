#pragma once
// Internal to daemon/schema: a `pattern` keyword that cannot crash or hang the daemon.
//
// valijson 1.0 checks `pattern` with a default std::regex, whose backtracking executor recurses
// once per character (`^(a|b)*$` overflows an 8 MiB stack at ~11k characters) and is exponential
// on nested quantifiers (`^(a+)+$`, 30 characters: ~15 s). valijson has no hook to swap the engine,
// so before valijson parses a schema we rename every `pattern` keyword to kPatternKeyword and
// register a custom constraint under that name (see ../shared/notes/valijson-1.0.md).
//
// The custom constraint still uses std::regex, but compiled with libstdc++'s
// regex_constants::__polynomial flag, which selects its breadth-first (Thompson NFA) executor:
// time O(length x pattern size), stack depth bounded by the pattern size, never by the subject.
// The flag refuses back-references (they cannot be matched in polynomial time); such a pattern is
// a compile error. On top of that, subjects longer than kMaxPatternSubjectBytes fail instead of
// being matched, which bounds the CPU spent per string (a{1000} costs ~18 ns per byte and state).
//
// `patternProperties` is not covered: valijson matches property names with its own std::regex.
// The validator refuses documents with property names longer than kMaxPatternSubjectBytes when
// the schema uses it (see validator.cpp); exponential patterns on short names remain a risk.
// Strings are matched byte-wise (UTF-8), as valijson does: `.` matches one byte, not one character.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace valijson {
class ConstraintBuilder;
}

namespace kpipe::schema::detail {

inline constexpr size_t kMaxPatternSubjectBytes = 4096;

// What `pattern` is renamed to before valijson sees the schema (prepare.h). A schema that already
// uses it is refused, so a user keyword is never mistaken for ours.
inline constexpr char kPatternKeyword[] = "$kpipe:pattern";

// Descriptions the constraint reports to valijson; validator.cpp turns them into messages.
// Each is followed by the pattern's source text.
inline constexpr std::string_view kPatternMismatch = "kpipe:pattern-mismatch:";
inline constexpr std::string_view kPatternTooLong = "kpipe:pattern-too-long:";

// The valijson constraint builder to register under kPatternKeyword. Its make() throws
// std::runtime_error for a pattern that is not a string, not a valid ECMAScript regex, or uses
// back-references.
std::unique_ptr<valijson::ConstraintBuilder> makePatternConstraintBuilder();

// A compiled pattern, immutable and shareable between threads (fast_path.h uses it too).
class CompiledPattern;
// Throws std::runtime_error like the builder's make().
std::shared_ptr<const CompiledPattern> compilePattern(std::string source);
// What the constraint decides: false for a subject over kMaxPatternSubjectBytes.
bool patternAccepts(const CompiledPattern& pattern, std::string_view subject);

// Whether `pattern` matches `subject`, with the same engine; compiles the pattern on each call
// (for explaining failures, not for the hot path). False for an invalid pattern.
bool patternMatches(std::string_view pattern, std::string_view subject);

// libstdc++ 12 reads the counts of `{n}`, `{n,}` and `{n,m}` into a long without overflow checks
// (undefined behaviour) and builds wrong automata for counts near LONG_MAX:
// `a{9223372036854775807}` matched "aa". A count above this cannot be built anyway (each repetition
// is at least one NFA state, and libstdc++ stops at 100,000), so such patterns are refused before
// std::regex sees them: by the pattern constraint, and by prepareSchema for patternProperties.
inline constexpr unsigned long kMaxRepetitionCount = 100'000;
// Throws std::runtime_error naming the pattern when one of its counts is over the limit.
void checkRepetitionCounts(std::string_view pattern);

}  // namespace kpipe::schema::detail
