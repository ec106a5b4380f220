#include "daemon/schema/format.h"

#include "daemon/schema/valijson.h"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kpipe::schema::detail {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isAlnum(char c) { return isDigit(c) || isAlpha(c); }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// The value of `n` ASCII digits at s[at], or -1.
int digits(std::string_view s, size_t at, size_t n) {
  if (at + n > s.size()) return -1;
  int value = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (!isDigit(s[i])) return -1;
    value = value * 10 + (s[i] - '0');
  }
  return value;
}

bool isLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int daysInMonth(int year, int month) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && isLeapYear(year) ? 29 : kDays[static_cast<size_t>(month - 1)];
}

// time-offset per RFC 3339 ("Z", "z" or "+hh:mm"/"-hh:mm"): sets minutes east of UTC; false
// when malformed.
bool parseOffset(std::string_view s, int& minutes) {
  if (s.size() == 1 && (s[0] == 'Z' || s[0] == 'z')) {
    minutes = 0;
    return true;
  }
  if (s.size() != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') return false;
  const int hours = digits(s, 1, 2);
  const int mins = digits(s, 4, 2);
  if (hours < 0 || hours > 23 || mins < 0 || mins > 59) return false;
  minutes = (s[0] == '+' ? 1 : -1) * (hours * 60 + mins);
  return true;
}

bool isSubDelim(char c) {
  switch (c) {
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
      return true;
    default:
      return false;
  }
}
bool isUnreserved(char c) { return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~'; }

// Scans URI characters in s[i, end): unreserved, sub-delims, `extra`, percent-encodings and,
// for IRIs, any non-ASCII byte. False on anything else.
bool scanChars(std::string_view s, size_t i, size_t end, std::string_view extra, bool iri) {
  for (; i < end; ++i) {
    const char c = s[i];
    if (isUnreserved(c) || isSubDelim(c) || extra.find(c) != std::string_view::npos ||
        (iri && static_cast<unsigned char>(c) >= 0x80)) {
      continue;
    }
    if (c == '%' && i + 2 < end && isHex(s[i + 1]) && isHex(s[i + 2])) {
      i += 2;
      continue;
    }
    return false;
  }
  return true;
}

bool isIpLiteral(std::string_view host) {
  // "[" ( IPv6address / IPvFuture ) "]"
  if (host.size() < 2 || host.front() != '[' || host.back() != ']') return false;
  const std::string_view inner = host.substr(1, host.size() - 2);
  if (!inner.empty() && (inner[0] == 'v' || inner[0] == 'V')) {
    const size_t dot = inner.find('.');
    if (dot == std::string_view::npos || dot < 2 || dot + 1 == inner.size()) return false;
    for (size_t i = 1; i < dot; ++i) {
      if (!isHex(inner[i])) return false;
    }
    return scanChars(inner, dot + 1, inner.size(), ":", false);
  }
  return isIpv6(inner);
}

// RFC 3986 URI-reference (or IRI-reference), with `absolute` requiring a scheme.
bool isUriLike(std::string_view s, bool absolute, bool iri) {
  size_t i = 0;
  // scheme, if the first ':' comes before any '/', '?', '#'
  const size_t colon = s.find(':');
  const size_t delimiter = s.find_first_of("/?#");
  if (colon != std::string_view::npos &&
      (delimiter == std::string_view::npos || colon < delimiter)) {
    if (colon == 0 || !isAlpha(s[0])) return false;
    for (size_t k = 1; k < colon; ++k) {
      const char c = s[k];
      if (!isAlnum(c) && c != '+' && c != '-' && c != '.') return false;
    }
    i = colon + 1;
  } else if (absolute) {
    return false;
  }
  const size_t hash = s.find('#', i);
  const size_t path_end = std::min({s.find('?', i), hash, s.size()});
  size_t path_start = i;
  if (s.substr(i, 2) == "//") {
    const size_t authority_end = std::min(s.find('/', i + 2), path_end);
    std::string_view authority = s.substr(i + 2, authority_end - i - 2);
    const size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
      if (!scanChars(authority, 0, at, ":", iri)) return false;
      authority.remove_prefix(at + 1);
    }
    std::string_view host = authority;
    if (!authority.empty() && authority[0] == '[') {
      const size_t close = authority.find(']');
      if (close == std::string_view::npos) return false;
      host = authority.substr(0, close + 1);
      if (!isIpLiteral(host)) return false;
      authority.remove_prefix(close + 1);
      if (!authority.empty() && authority[0] != ':') return false;
    } else {
      const size_t port_colon = authority.find(':');
      host = authority.substr(0, port_colon);
      if (!scanChars(host, 0, host.size(), "", iri)) return false;
      authority.remove_prefix(host.size());
    }
    if (!authority.empty()) {  // ":" port
      for (size_t k = 1; k < authority.size(); ++k) {
        if (!isDigit(authority[k])) return false;
      }
    }
    path_start = authority_end;
  } else if (i == 0) {
    // A relative reference's first segment must not contain ':' (it would read as a scheme).
    const size_t first_slash = s.find('/');
    const size_t first_colon = s.find(':');
    if (first_colon < std::min(first_slash, path_end)) return false;
  }
  if (!scanChars(s, path_start, path_end, ":@/", iri)) return false;
  if (path_end < s.size() && s[path_end] == '?') {
    if (!scanChars(s, path_end + 1, std::min(hash, s.size()), ":@/?", iri)) return false;
  }
  if (hash != std::string_view::npos && !scanChars(s, hash + 1, s.size(), ":@/?", iri)) {
    return false;
  }
  return true;
}

bool isAtext(char c) {
  return isAlnum(c) || std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

class FormatConstraint final : public valijson::constraints::PolyConstraint {
 public:
  FormatConstraint(FormatCheck check, std::shared_ptr<const std::string> name)
      : check_(check), name_(std::move(name)) {}

  bool validate(const valijson::adapters::Adapter& target, const std::vector<std::string>& context,
                valijson::ValidationResults* results) const override {
    if (!target.isString()) {
      return true;  // draft-07: a format applies to strings only
    }
    // The adapter can only copy the string out; reusing one buffer per thread avoids allocating.
    thread_local std::string subject;
    target.getString(subject);
    if (check_(subject)) {
      return true;
    }
    if (results != nullptr) {
      results->pushError(context, std::string(kFormatMismatch) + *name_);
    }
    return false;
  }

 private:
  valijson::constraints::Constraint* cloneInto(void* memory) const override {
    return new (memory) FormatConstraint(*this);
  }
  size_t sizeOf() const override { return sizeof(FormatConstraint); }

  FormatCheck check_;
  std::shared_ptr<const std::string> name_;
};

// Accepts every value: unknown formats are annotations in draft-07.
class AlwaysValid final : public valijson::constraints::PolyConstraint {
 public:
  bool validate(const valijson::adapters::Adapter&, const std::vector<std::string>&,
                valijson::ValidationResults*) const override {
    return true;
  }

 private:
  valijson::constraints::Constraint* cloneInto(void* memory) const override {
    return new (memory) AlwaysValid(*this);
  }
  size_t sizeOf() const override { return sizeof(AlwaysValid); }
};

class FormatConstraintBuilder final : public valijson::ConstraintBuilder {
 public:
  valijson::constraints::Constraint* make(const valijson::adapters::Adapter& node) const override {
    std::string name;
    if (!node.isString() || !node.getString(name)) {
      throw std::runtime_error("\"format\" must be a string");
    }
    if (const FormatCheck check = formatCheck(name)) {
      return new FormatConstraint(check, std::make_shared<const std::string>(std::move(name)));
    }
    return new AlwaysValid();
  }
};

}  // namespace

bool isDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  const int year = digits(s, 0, 4);
  const int month = digits(s, 5, 2);
  const int day = digits(s, 8, 2);
  return year >= 0 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

bool isTime(std::string_view s) {
  if (s.size() < 9 || s[2] != ':' || s[5] != ':') return false;
  const int hour = digits(s, 0, 2);
  const int minute = digits(s, 3, 2);
  const int second = digits(s, 6, 2);
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) {
    return false;
  }
  size_t i = 8;
  if (s[i] == '.') {
    const size_t start = ++i;
    while (i < s.size() && isDigit(s[i])) ++i;
    if (i == start) return false;
  }
  int offset = 0;
  if (!parseOffset(s.substr(i), offset)) return false;
  if (second == 60) {
    // A leap second is inserted at 23:59:60 UTC only.
    const int utc = ((hour * 60 + minute - offset) % 1440 + 1440) % 1440;
    return utc == 23 * 60 + 59;
  }
  return true;
}

bool isDateTime(std::string_view s) {
  return s.size() > 11 && (s[10] == 'T' || s[10] == 't') && isDate(s.substr(0, 10)) &&
         isTime(s.substr(11));
}

bool isUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isHex(s[i])) return false;
  }
  return true;
}

bool isIpv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (true) {
    const size_t start = i;
    int value = 0;
    while (i < s.size() && isDigit(s[i]) && i - start < 3) {
      value = value * 10 + (s[i++] - '0');
    }
    const size_t length = i - start;
    if (length == 0 || value > 255 || (length > 1 && s[start] == '0')) return false;
    if (++parts == 4) return i == s.size();
    if (i >= s.size() || s[i] != '.') return false;
    ++i;
  }
}

bool isIpv6(std::string_view s) {
  int groups = 0;
  bool compressed = false;
  size_t i = 0;
  if (s.substr(0, 2) == "::") {
    compressed = true;
    i = 2;
    if (i == s.size()) return true;
  } else if (!s.empty() && s[0] == ':') {
    return false;
  }
  while (i < s.size()) {
    size_t end = i;
    while (end < s.size() && isHex(s[end]) && end - i < 5) ++end;
    if (end < s.size() && s[end] == '.') {
      // A trailing dotted quad stands for the last two groups.
      if (!isIpv4(s.substr(i))) return false;
      groups += 2;
      break;
    }
    const size_t length = end - i;
    if (length == 0 || length > 4) return false;
    ++groups;
    if (end == s.size()) break;
    if (s[end] != ':') return false;
    if (end + 1 < s.size() && s[end + 1] == ':') {
      if (compressed) return false;
      compressed = true;
      i = end + 2;
      if (i == s.size()) break;
    } else {
      i = end + 1;
      if (i == s.size()) return false;  // a trailing single ':'
    }
  }
  return compressed ? groups < 8 : groups == 8;
}

bool isHostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = std::min(s.find('.', start), s.size());
    const std::string_view label = s.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!isAlnum(c) && c != '-') return false;
    }
    // RFC 5891 4.2.3.1: "--" in the third and fourth positions only for A-labels ("xn--").
    if (label.size() >= 4 && label.substr(2, 2) == "--" && label.substr(0, 2) != "xn") {
      return false;
    }
    if (dot == s.size()) return true;
    start = dot + 1;
  }
}

bool isEmail(std::string_view s) {
  const size_t at = s.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == s.size() || at > 64) return false;
  const std::string_view local = s.substr(0, at);
  const std::string_view domain = s.substr(at + 1);
  if (local.front() == '"') {
    if (local.size() < 2 || local.back() != '"') return false;
    for (size_t i = 1; i + 1 < local.size(); ++i) {
      const char c = local[i];
      if (c == '\\') {
        if (++i + 1 >= local.size()) return false;
      } else if (c == '"' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        return false;
      }
    }
  } else {
    // dot-atom: no leading, trailing or doubled dots
    if (local.front() == '.' || local.back() == '.') return false;
    for (size_t i = 0; i < local.size(); ++i) {
      if (local[i] == '.' ? local[i + 1] == '.' : !isAtext(local[i])) return false;
    }
  }
  if (domain.front() == '[') {
    if (domain.back() != ']') return false;
    const std::string_view literal = domain.substr(1, domain.size() - 2);
    return literal.substr(0, 5) == "IPv6:" ? isIpv6(literal.substr(5)) : isIpv4(literal);
  }
  return isHostname(domain);
}

bool isUri(std::string_view s) { return isUriLike(s, true, false); }
bool isUriReference(std::string_view s) { return isUriLike(s, false, false); }
bool isIri(std::string_view s) { return isUriLike(s, true, true); }
bool isIriReference(std::string_view s) { return isUriLike(s, false, true); }

bool isJsonPointer(std::string_view s) {
  if (!s.empty() && s[0] != '/') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '~' && (i + 1 == s.size() || (s[i + 1] != '0' && s[i + 1] != '1'))) return false;
  }
  return true;
}

bool isRelativeJsonPointer(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && isDigit(s[i])) ++i;
  if (i == 0 || (i > 1 && s[0] == '0')) return false;
  const std::string_view rest = s.substr(i);
  return rest == "#" || isJsonPointer(rest);
}

FormatCheck formatCheck(std::string_view format) {
  static constexpr std::pair<std::string_view, FormatCheck> kChecks[] = {
      {"date", isDate},
      {"time", isTime},
      {"date-time", isDateTime},
      {"uuid", isUuid},
      {"email", isEmail},
      {"hostname", isHostname},
      {"ipv4", isIpv4},
      {"ipv6", isIpv6},
      {"uri", isUri},
      {"uri-reference", isUriReference},
      {"iri", isIri},
      {"iri-reference", isIriReference},
      {"json-pointer", isJsonPointer},
      {"relative-json-pointer", isRelativeJsonPointer},
  };
  for (const auto& [name, check] : kChecks) {
    if (name == format) return check;
  }
  return nullptr;
}

std::unique_ptr<valijson::ConstraintBuilder> makeFormatConstraintBuilder() {
  return std::make_unique<FormatConstraintBuilder>();
}

}  // namespace kpipe::schema::detail
