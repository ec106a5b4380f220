#pragma once
// Internal to daemon/schema: the `format` keyword, checked by kpipe instead of valijson.
//
// valijson 1.0 checks only date, time and date-time (building a std::regex per value, ~0.5 ms,
// and letting 2023-02-29 through), and fails or throws on non-strings. prepareSchema renames
// every `format` to kFormatKeyword, whose constraint ignores non-strings and unknown formats
// (draft-07 makes format an annotation for those) and checks the known ones with hand-written
// parsers: no regex, no allocation, one pass over the string.

#include <memory>
#include <string_view>

namespace valijson {
class ConstraintBuilder;
}

namespace kpipe::schema::detail {

inline constexpr char kFormatKeyword[] = "$kpipe:format";

// Description the constraint reports to valijson, followed by the format's name.
inline constexpr std::string_view kFormatMismatch = "kpipe:format-mismatch:";

// The check for a format name, or nullptr when kpipe does not check that format.
using FormatCheck = bool (*)(std::string_view);
FormatCheck formatCheck(std::string_view format);

// Each is one format's check, exposed for tests.
bool isDate(std::string_view s);      // RFC 3339 full-date, with the calendar (no 2023-02-29)
bool isTime(std::string_view s);      // RFC 3339 full-time; a leap second only at 23:59:60 UTC
bool isDateTime(std::string_view s);  // RFC 3339 date-time
bool isUuid(std::string_view s);      // RFC 4122 text form (any version)
bool isEmail(std::string_view s);     // RFC 5321 mailbox: dot-atom or quoted local part
bool isHostname(std::string_view s);  // RFC 1123 (no IDNA checks on xn-- labels)
bool isIpv4(std::string_view s);      // dotted quad, no leading zeros
bool isIpv6(std::string_view s);      // RFC 4291 text forms, no zone
bool isUri(std::string_view s);       // RFC 3986 absolute URI (with a scheme)
bool isUriReference(std::string_view s);
bool isIri(std::string_view s);  // as uri, and non-ASCII (UTF-8) characters allowed
bool isIriReference(std::string_view s);
bool isJsonPointer(std::string_view s);
bool isRelativeJsonPointer(std::string_view s);

// The valijson constraint builder to register under kFormatKeyword. make() throws
// std::runtime_error when the value of `format` is not a string.
std::unique_ptr<valijson::ConstraintBuilder> makeFormatConstraintBuilder();

}  // namespace kpipe::schema::detail
