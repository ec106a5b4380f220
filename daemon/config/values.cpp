// The scalar syntaxes of the format: ${VAR} interpolation, durations, sizes.

#include "daemon/config/loader.h"
#include "daemon/config/reader.h"

#include <charconv>
#include <cstdlib>
#include <limits>

namespace kpipe::config {
namespace {

bool isVariableName(std::string_view name) {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool hasLineBreak(std::string_view text) { return text.find_first_of("\r\n") != text.npos; }

// Splits "250ms" into 250 and "ms". nullopt unless it is digits followed by the rest.
template <typename N>
std::optional<std::pair<N, std::string_view>> numberAndUnit(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  N value{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc() || ptr != text.data() + digits) return std::nullopt;
  return std::pair(value, text.substr(digits));
}

}  // namespace

EnvLookup processEnvironment() {
  return [](std::string_view name) -> std::optional<std::string> {
    // getenv is safe as long as nobody calls setenv concurrently; kpipe never does.
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

InterpolationResult interpolate(std::string_view text, const EnvLookup& env) {
  InterpolationResult result;
  auto fail = [&](std::string message) {
    result.value.clear();
    result.error = std::move(message);
    return result;
  };
  if (hasLineBreak(text)) {
    // Nothing in the format is multi-line; a line break here is almost always a pasted secret.
    return fail("value spans several lines; values must be single-line");
  }
  size_t i = 0;
  while (i < text.size()) {
    size_t dollar = text.find('$', i);
    result.value += text.substr(i, dollar == text.npos ? text.npos : dollar - i);
    if (dollar == text.npos) break;
    if (dollar + 1 < text.size() && text[dollar + 1] == '$') {
      result.value += '$';
      i = dollar + 2;
      continue;
    }
    if (dollar + 1 >= text.size() || text[dollar + 1] != '{') {
      // A lone "$" (e.g. in a password) stays as written; only ${...} is special.
      result.value += '$';
      i = dollar + 1;
      continue;
    }
    size_t close = text.find('}', dollar + 2);
    if (close == text.npos) {
      return fail("unterminated \"${\" in " + detail::quote(text) + " (write $$ for a literal $)");
    }
    std::string_view reference = text.substr(dollar + 2, close - dollar - 2);
    size_t separator = reference.find(":-");
    std::string_view name = reference.substr(0, separator);
    if (!isVariableName(name)) {
      return fail("invalid variable reference " +
                  detail::quote("${" + std::string(reference) + "}") +
                  " (write ${NAME} or ${NAME:-default})");
    }
    std::optional<std::string> value = env(name);
    if (separator != reference.npos && (!value || value->empty())) {
      // Shell semantics: ":-" also covers a variable that is set but empty.
      value = std::string(reference.substr(separator + 2));
    }
    if (!value) {
      return fail("environment variable " + std::string(name) + " is not set (write ${" +
                  std::string(name) + ":-default} for a default)");
    }
    if (hasLineBreak(*value)) {
      return fail("environment variable " + std::string(name) +
                  " contains a line break; secret values must be single-line");
    }
    result.value += *value;
    i = close + 1;
  }
  return result;
}

const char* storeTypeName(StoreType type) {
  switch (type) {
    case StoreType::Redis:
      return "redis";
    case StoreType::Lmdb:
      return "lmdb";
    case StoreType::Memory:
      break;
  }
  return "memory";
}

std::optional<Duration> parseDuration(std::string_view text) {
  auto parsed = numberAndUnit<int64_t>(text);
  if (!parsed) return std::nullopt;
  auto [count, unit] = *parsed;
  int64_t ms_per_unit = 0;
  if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "m") {
    ms_per_unit = 60'000;
  } else if (unit == "h") {
    ms_per_unit = 3'600'000;
  } else if (unit == "d") {
    ms_per_unit = 86'400'000;
  } else {
    return std::nullopt;
  }
  if (count > std::numeric_limits<int64_t>::max() / ms_per_unit) return std::nullopt;
  return Duration(count * ms_per_unit);
}

std::optional<uint64_t> parseSize(std::string_view text) {
  auto parsed = numberAndUnit<uint64_t>(text);
  if (!parsed) return std::nullopt;
  auto [count, unit] = *parsed;
  struct Unit {
    std::string_view suffix;
    uint64_t bytes;
  };
  static constexpr Unit kUnits[] = {{"", 1},
                                    {"B", 1},
                                    {"KiB", 1ULL << 10},
                                    {"MiB", 1ULL << 20},
                                    {"GiB", 1ULL << 30},
                                    {"TiB", 1ULL << 40},
                                    {"KB", 1'000},
                                    {"MB", 1'000'000},
                                    {"GB", 1'000'000'000},
                                    {"TB", 1'000'000'000'000}};
  for (const Unit& u : kUnits) {
    if (u.suffix != unit) continue;
    if (count > std::numeric_limits<uint64_t>::max() / u.bytes) return std::nullopt;
    return count * u.bytes;
  }
  return std::nullopt;
}

}  // namespace kpipe::config
