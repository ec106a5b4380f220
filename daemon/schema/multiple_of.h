#pragma once
// Internal to daemon/schema: `multipleOf`, checked by kpipe instead of valijson.
//
// valijson 1.0 tests a fractional divisor with a remainder, so 12391239123 is "not a multiple of
// 1e-8" (the quotient, 1.2e18, is exact, the remainder is rounding noise); with an integer divisor
// it converts the value to int64 first: 2.5 is "a multiple of 2", 1e307 is undefined behaviour,
// and it accepts a divisor of 0 (then divides by it: SIGFPE on the first message) or -1
// (INT64_MIN % -1: SIGFPE). prepareSchema renames every `multipleOf` to kMultipleOfKeyword.
// This constraint refuses divisors that are not positive numbers when the schema is compiled;
// with an integral divisor it is exact (integer remainder for integers, fmod for other numbers);
// with a fractional one it checks that the quotient is an integer, within a double's precision.

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
