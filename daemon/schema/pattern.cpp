// GCC 12 with -fsanitize=address reports a false -Wmaybe-uninitialized inside std::regex's
// std::function members (libstdc++ headers). It is reported once the translation unit is
// optimized, so the pragma must come before every include and cannot be popped.
#if defined(__SANITIZE_ADDRESS__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "daemon/schema/pattern.h"

#include "daemon/schema/simple_pattern.h"
#include "daemon/schema/valijson.h"

#include <memory>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifndef __GLIBCXX__
#error \
    "pattern.cpp relies on libstdc++'s polynomial std::regex executor (regex_constants::__polynomial)"
#endif

namespace kpipe::schema::detail {

// regex_search tries every start position, so on a subject that does not match it costs
// O(length^2 x pattern): fine for short subjects, where it is about twice as fast as the single
// pass below. Longer subjects use one regex_match of `[\s\S]*?(?:pattern)[\s\S]*`, linear.
constexpr size_t kSearchMaxBytes = 128;

constexpr auto kRegexFlags = std::regex::ECMAScript | std::regex_constants::__polynomial;

class CompiledPattern {
 public:
  explicit CompiledPattern(std::string source) : source_(std::move(source)) {
    checkRepetitionCounts(source_);
    try {
      // The pattern alone first: wrapping could turn an invalid pattern such as `a)(b` valid.
      search_.assign(source_, kRegexFlags);
      // `^` and `$` still anchor at the subject's ends only (no multiline flag), so the wrapper
      // does not change what matches.
      anywhere_.assign("[\\s\\S]*?(?:" + source_ + ")[\\s\\S]*", kRegexFlags);
      simple_ = SimplePattern::compile(source_);
    } catch (const std::regex_error& e) {
      if (e.code() == std::regex_constants::error_complexity) {
        throw std::runtime_error("pattern \"" + source_ +
                                 "\" uses a back-reference, which kpipe does not support");
      }
      throw std::runtime_error("invalid pattern \"" + source_ + "\": " + e.what());
    }
  }

  bool matches(std::string_view subject) const {
    if (simple_) return simple_->search(subject);
    if (subject.size() <= kSearchMaxBytes) {
      return std::regex_search(subject.begin(), subject.end(), search_);
    }
    return std::regex_match(subject.begin(), subject.end(), anywhere_);
  }

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::regex search_;
  std::regex anywhere_;
  // The same pattern as a bit-parallel automaton when it is simple enough (most are): about
  // 30x faster than std::regex and allocation-free. std::regex is still compiled above, so
  // that it alone decides which patterns are valid.
  std::optional<SimplePattern> simple_;
};

namespace {

// Immutable after construction and shared by every copy valijson makes of it, so one compiled
// regex serves all threads (matching a const std::regex is thread-safe).
class PatternConstraint final : public valijson::constraints::PolyConstraint {
 public:
  explicit PatternConstraint(std::shared_ptr<const CompiledPattern> pattern)
      : pattern_(std::move(pattern)) {}

  bool validate(const valijson::adapters::Adapter& target, const std::vector<std::string>& context,
                valijson::ValidationResults* results) const override {
    if (!target.isString()) {
      return true;  // `pattern` applies to strings only
    }
    // The adapter can only copy the string out; reusing one buffer per thread avoids allocating.
    thread_local std::string subject;
    target.getString(subject);
    if (subject.size() > kMaxPatternSubjectBytes) {
      if (results != nullptr) {
        results->pushError(context, std::string(kPatternTooLong) + std::to_string(subject.size()) +
                                        ":" + pattern_->source());
      }
      return false;
    }
    if (pattern_->matches(subject)) {
      return true;
    }
    if (results != nullptr) {
      results->pushError(context, std::string(kPatternMismatch) + pattern_->source());
    }
    return false;
  }

 private:
  valijson::constraints::Constraint* cloneInto(void* memory) const override {
    return new (memory) PatternConstraint(*this);
  }
  size_t sizeOf() const override { return sizeof(PatternConstraint); }

  std::shared_ptr<const CompiledPattern> pattern_;
};

class PatternConstraintBuilder final : public valijson::ConstraintBuilder {
 public:
  valijson::constraints::Constraint* make(const valijson::adapters::Adapter& node) const override {
    std::string source;
    if (!node.isString() || !node.getString(source)) {
      throw std::runtime_error("\"pattern\" must be a string");
    }
    return new PatternConstraint(compilePattern(std::move(source)));
  }
};

}  // namespace

void checkRepetitionCounts(std::string_view pattern) {
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      ++i;  // an escaped character is never a quantifier's brace
    } else if (in_class) {
      in_class = c != ']';
    } else if (c == '[') {
      in_class = true;
    } else if (c == '{') {
      // `{digits` and then `,digits`: each run of digits is a count.
      for (size_t j = i + 1; j < pattern.size();) {
        unsigned long count = 0;
        const size_t start = j;
        for (; j < pattern.size() && pattern[j] >= '0' && pattern[j] <= '9'; ++j) {
          count = count * 10 + static_cast<unsigned long>(pattern[j] - '0');
          if (count > kMaxRepetitionCount) {
            throw std::runtime_error("pattern \"" + std::string(pattern) + "\" repeats more than " +
                                     std::to_string(kMaxRepetitionCount) + " times");
          }
        }
        if (j == start || j >= pattern.size() || pattern[j] != ',') break;
        ++j;
      }
    }
  }
}

std::shared_ptr<const CompiledPattern> compilePattern(std::string source) {
  return std::make_shared<const CompiledPattern>(std::move(source));
}

bool patternAccepts(const CompiledPattern& pattern, std::string_view subject) {
  return subject.size() <= kMaxPatternSubjectBytes && pattern.matches(subject);
}

bool patternMatches(std::string_view pattern, std::string_view subject) {
  try {
    return subject.size() <= kMaxPatternSubjectBytes &&
           CompiledPattern(std::string(pattern)).matches(subject);
  } catch (const std::exception&) {
    return false;
  }
}

std::unique_ptr<valijson::ConstraintBuilder> makePatternConstraintBuilder() {
  return std::make_unique<PatternConstraintBuilder>();
}

}  // namespace kpipe::schema::detail
