#include "daemon/schema/simple_pattern.h"

#include <algorithm>
#include <bitset>
#include <cstddef>
#include <limits>
#include <tuple>
#include <vector>

namespace kpipe::schema::detail {
namespace {

using ByteSet = std::bitset<256>;
constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();
constexpr size_t kMaxPositions = 64;
// Counts beyond this cannot fit in 64 positions anyway; reading stops here (no overflow).
constexpr uint32_t kMaxCount = 1000;

struct Atom {
  ByteSet bytes;
  uint32_t min = 1;
  uint32_t max = 1;
};

ByteSet range(unsigned char lo, unsigned char hi) {
  ByteSet set;
  for (unsigned c = lo; c <= hi; ++c) set.set(c);
  return set;
}

// std::regex's classes in the "C" locale, byte-wise.
ByteSet digitBytes() { return range('0', '9'); }
ByteSet wordBytes() {
  ByteSet set = range('0', '9') | range('a', 'z') | range('A', 'Z');
  set.set('_');
  return set;
}
ByteSet spaceBytes() {
  ByteSet set;
  for (char c : {' ', '\t', '\n', '\v', '\f', '\r'}) set.set(static_cast<unsigned char>(c));
  return set;
}

bool isAsciiPunctuation(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x21 && u <= 0x7e &&
         !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

std::optional<char> controlEscape(char c) {
  switch (c) {
    case 't':
      return '\t';
    case 'n':
      return '\n';
    case 'v':
      return '\v';
    case 'f':
      return '\f';
    case 'r':
      return '\r';
    default:
      return std::nullopt;
  }
}

std::optional<ByteSet> classEscape(char c) {
  switch (c) {
    case 'd':
      return digitBytes();
    case 'D':
      return ~digitBytes();
    case 'w':
      return wordBytes();
    case 'W':
      return ~wordBytes();
    case 's':
      return spaceBytes();
    case 'S':
      return ~spaceBytes();
    default:
      return std::nullopt;
  }
}

class Parser {
 public:
  explicit Parser(std::string_view pattern) : p_(pattern) {}

  // The atoms, or nullopt outside the subset.
  std::optional<std::vector<Atom>> atoms(bool& anchored_start, bool& anchored_end) {
    std::vector<Atom> atoms;
    if (peek('^')) {
      anchored_start = true;
      ++i_;
    }
    while (i_ < p_.size()) {
      const char c = p_[i_];
      if (c == '$') {
        if (i_ + 1 != p_.size()) return std::nullopt;
        anchored_end = true;
        ++i_;
        break;
      }
      std::optional<ByteSet> bytes;
      if (c == '.') {
        ++i_;
        bytes = ~ByteSet();
        bytes->reset('\n');
        bytes->reset('\r');
      } else if (c == '[') {
        ++i_;
        bytes = bracket();
      } else if (c == '\\') {
        ++i_;
        bytes = escape();
      } else if (isSpecial(c)) {
        return std::nullopt;  // groups, alternation, stray quantifiers and brackets
      } else {
        ++i_;
        bytes = ByteSet().set(static_cast<unsigned char>(c));
      }
      if (!bytes) return std::nullopt;
      Atom atom{*bytes};
      if (!quantifier(atom)) return std::nullopt;
      atoms.push_back(atom);
    }
    return atoms;
  }

 private:
  static bool isSpecial(char c) {
    switch (c) {
      case '^':
      case '|':
      case '(':
      case ')':
      case '?':
      case '*':
      case '+':
      case '{':
      case '}':
      case ']':
        return true;
      default:
        return false;
    }
  }

  bool peek(char c) const { return i_ < p_.size() && p_[i_] == c; }

  // After a backslash outside a class.
  std::optional<ByteSet> escape() {
    if (i_ >= p_.size()) return std::nullopt;
    const char c = p_[i_++];
    if (auto set = classEscape(c)) return set;
    if (auto control = controlEscape(c)) return ByteSet().set(static_cast<unsigned char>(*control));
    if (isAsciiPunctuation(c)) return ByteSet().set(static_cast<unsigned char>(c));
    return std::nullopt;  // \b \B \0 \1 \c \x \u and other letters
  }

  // One character of a class, as a byte (a range end), or nullopt.
  std::optional<unsigned char> classChar() {
    if (i_ >= p_.size()) return std::nullopt;
    const char c = p_[i_];
    if (c == '\\') {
      if (i_ + 1 >= p_.size()) return std::nullopt;
      const char e = p_[i_ + 1];
      std::optional<char> value = controlEscape(e);
      if (!value && isAsciiPunctuation(e)) value = e;
      if (!value) return std::nullopt;
      i_ += 2;
      return static_cast<unsigned char>(*value);
    }
    // `[` could open a POSIX class ([:alpha:]) in libstdc++; bytes over 0x7f compare as
    // signed chars in its ranges. Both are left to std::regex.
    if (c == '[' || c == ']' || static_cast<unsigned char>(c) > 0x7f) return std::nullopt;
    ++i_;
    return static_cast<unsigned char>(c);
  }

  std::optional<ByteSet> bracket() {
    bool negated = false;
    if (peek('^')) {
      negated = true;
      ++i_;
    }
    if (peek(']')) return std::nullopt;  // `[]` and `[^]`: ECMAScript-specific, left to std::regex
    ByteSet set;
    while (!peek(']')) {
      if (i_ >= p_.size()) return std::nullopt;
      if (p_[i_] == '\\' && i_ + 1 < p_.size()) {
        if (auto escaped = classEscape(p_[i_ + 1])) {
          i_ += 2;
          // `[\d-z]` is a range in no useful sense: left to std::regex.
          if (peek('-') && i_ + 1 < p_.size() && p_[i_ + 1] != ']') return std::nullopt;
          set |= *escaped;
          continue;
        }
      }
      const std::optional<unsigned char> lo = classChar();
      if (!lo) return std::nullopt;
      if (peek('-') && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
        ++i_;
        const std::optional<unsigned char> hi = classChar();
        if (!hi || *hi < *lo) return std::nullopt;
        set |= range(*lo, *hi);
      } else {
        set.set(*lo);
      }
    }
    ++i_;  // the closing ]
    return negated ? ~set : set;
  }

  std::optional<uint32_t> count() {
    const size_t start = i_;
    uint32_t value = 0;
    while (i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '9') {
      value = value * 10 + static_cast<uint32_t>(p_[i_] - '0');
      if (value > kMaxCount) return std::nullopt;
      ++i_;
    }
    if (i_ == start) return std::nullopt;
    return value;
  }

  bool quantifier(Atom& atom) {
    if (i_ >= p_.size()) return true;
    switch (p_[i_]) {
      case '?':
        atom.min = 0;
        ++i_;
        break;
      case '*':
        atom.min = 0;
        atom.max = kUnbounded;
        ++i_;
        break;
      case '+':
        atom.max = kUnbounded;
        ++i_;
        break;
      case '{': {
        ++i_;
        const std::optional<uint32_t> min = count();
        if (!min) return false;
        uint32_t max = *min;
        if (peek(',')) {
          ++i_;
          if (peek('}')) {
            max = kUnbounded;
          } else {
            const std::optional<uint32_t> upper = count();
            if (!upper || *upper < *min) return false;
            max = *upper;
          }
        }
        if (!peek('}')) return false;
        ++i_;
        atom.min = *min;
        atom.max = max;
        break;
      }
      default:
        return true;
    }
    if (peek('?')) ++i_;  // lazy: the same yes/no answer
    // A second quantifier (`a*+`, `a{2}{3}`) is left to std::regex.
    return !(i_ < p_.size() && (p_[i_] == '?' || p_[i_] == '*' || p_[i_] == '+' || p_[i_] == '{'));
  }

  std::string_view p_;
  size_t i_ = 0;
};

}  // namespace

std::optional<SimplePattern> SimplePattern::compile(std::string_view pattern) {
  SimplePattern compiled;
  Parser parser(pattern);
  std::optional<std::vector<Atom>> atoms =
      parser.atoms(compiled.anchored_start_, compiled.anchored_end_);
  if (!atoms) return std::nullopt;

  // Positions: n copies of a{n,m} are required and m-n optional (the copies accept the same
  // bytes, so which optional ones are skipped does not matter); a{n,} repeats its last copy.
  std::vector<ByteSet> bytes;
  std::vector<bool> optional;
  std::vector<bool> loops;
  for (const Atom& atom : *atoms) {
    const uint32_t copies = atom.max == kUnbounded ? std::max<uint32_t>(atom.min, 1) : atom.max;
    if (bytes.size() + copies > kMaxPositions) return std::nullopt;
    for (uint32_t k = 0; k < copies; ++k) {
      bytes.push_back(atom.bytes);
      optional.push_back(k >= atom.min);
      loops.push_back(atom.max == kUnbounded && k + 1 == copies);
    }
  }
  const size_t n = bytes.size();
  compiled.positions_ = static_cast<int>(n);
  for (size_t pos = 0; pos < n; ++pos) {
    for (unsigned c = 0; c < 256; ++c) {
      if (bytes[pos].test(c)) compiled.accepts_[c] |= uint64_t{1} << pos;
    }
  }
  // Next positions from `from` on: each up to and including the first required one.
  auto reachable = [&](size_t from) {
    uint64_t mask = 0;
    for (size_t pos = from; pos < n; ++pos) {
      mask |= uint64_t{1} << pos;
      if (!optional[pos]) return std::make_pair(mask, false);
    }
    return std::make_pair(mask, true);  // the end is reachable too
  };
  bool to_end = false;
  std::tie(compiled.first_, to_end) = reachable(0);
  compiled.empty_ = to_end;
  for (size_t pos = 0; pos < n; ++pos) {
    auto [next, ends] = reachable(pos + 1);
    compiled.follow_[pos] = next | (loops[pos] ? uint64_t{1} << pos : 0);
    if (ends) compiled.last_ |= uint64_t{1} << pos;
  }
  return compiled;
}

bool SimplePattern::search(std::string_view subject) const {
  // An empty match is found at the start (unanchored end) or at the end (unanchored start).
  if (empty_ && (!anchored_end_ || !anchored_start_)) return true;
  uint64_t state = 0;  // positions that matched the previous byte
  bool at_start = true;
  for (const char c : subject) {
    uint64_t next = at_start || !anchored_start_ ? first_ : 0;
    at_start = false;
    for (uint64_t rest = state; rest != 0; rest &= rest - 1) {
      next |= follow_[static_cast<size_t>(__builtin_ctzll(rest))];
    }
    state = next & accepts_[static_cast<unsigned char>(c)];
    if (!anchored_end_ && (state & last_) != 0) return true;
    if (state == 0 && anchored_start_) return false;
  }
  return (state & last_) != 0 || (empty_ && subject.empty());
}

}  // namespace kpipe::schema::detail
