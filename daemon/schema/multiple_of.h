#pragma once
// Internal to daemon/schema: `multipleOf` with a fractional divisor.
//
// valijson 1.0 tests a fractional divisor with a remainder, so 12391239123 is "not a multiple of
// 1e-8" (the quotient, 1.2e18, is exact, the remainder is rounding noise). prepareSchema renames
// such a `multipleOf` to kMultipleOfKeyword; this constraint checks that the quotient is an
// integer, within the precision of a double. Integer divisors stay with valijson.

#include <memory>
#include <string_view>

namespace valijson {
class ConstraintBuilder;
}

namespace kpipe::schema::detail {

inline constexpr char kMultipleOfKeyword[] = "$kpipe:multipleOf";

// valijson's own description, followed by the divisor, so that both explain alike.
inline constexpr std::string_view kMultipleOfMismatch = "Value should be a multiple of ";

// make() throws std::runtime_error for a divisor that is not a positive number.
std::unique_ptr<valijson::ConstraintBuilder> makeMultipleOfConstraintBuilder();

}  // namespace kpipe::schema::detail
