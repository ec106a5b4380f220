#pragma once
// Internal to daemon/config (namespace detail): the machinery loader.cpp reads YAML with.
//
// ObjectReader wraps one YAML map. Per-struct code asks it for fields by name ("topic", required,
// as a string); it remembers which keys were asked for and used, and finish() reports every key
// nobody asked for (with a did-you-mean). Keys written twice are reported when the map is opened,
// because yaml-cpp 0.7 keeps both silently. Problems go to a Diagnostics and never stop the
// reading, so one pass finds every error of a file.
//
// Only the maps the format names are ever opened, and only scalars are ever read as values, so
// a hostile file (deep nesting, alias fan-out) costs no more than its parse.
//
// Not thread-safe; one Context per file being read.

#include "daemon/config/loader.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace kpipe::config::detail {

// Collects the errors of one file.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  // At a YAML position (0-based, as yaml-cpp gives it).
  void error(const YAML::Mark& at, std::string key_path, std::string message);
  // About the file as a whole (missing, unreadable): no line.
  void fileError(std::string key_path, std::string message);
  size_t count() const { return errors_.size(); }
  // The errors sorted by position; file-level ones first.
  std::vector<ConfigError> take();

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

// One key and its value, as found in a map.
struct Field {
  std::string name;     // the key; "" for a document root
  std::string path;     // "errors.retry.initial"; "" for a document root
  YAML::Mark key_mark;  // where the key is
  YAML::Node value;
  // yaml-cpp places an empty value (`ttl:`) at the start of the next token, often the next
  // line; the key is where the user should look.
  YAML::Mark valueMark() const { return value.IsNull() ? key_mark : value.Mark(); }
};

template <typename T>
struct Parsed {
  std::optional<T> value;
  std::string error;  // set when value is not
  static Parsed ok(T v) { return Parsed{std::move(v), {}}; }
  static Parsed fail(std::string message) { return Parsed{std::nullopt, std::move(message)}; }
};

// Turns the (interpolated) text of a scalar into a T, or says why not.
template <typename T>
struct Parser {
  std::string what;  // "a duration": completes "expected ..., got a map"
  std::function<Parsed<T>(std::string_view)> parse;
};

// State shared by every reader of one file.
class Context {
 public:
  Context(Diagnostics& diagnostics, const EnvLookup& env) : diagnostics_(diagnostics), env_(env) {}

  Diagnostics& diagnostics() { return diagnostics_; }
  void error(const Field& field, std::string message) {
    diagnostics_.error(field.valueMark(), field.path, std::move(message));
  }
  void errorAtKey(const Field& field, std::string message) {
    diagnostics_.error(field.key_mark, field.path, std::move(message));
  }

  // The text of a scalar after ${VAR} interpolation. Reports (and returns nullopt) when the value
  // is not a scalar — `what` names what was expected — or when interpolation fails.
  std::optional<std::string> text(const Field& field, std::string_view what);

  template <typename T>
  std::optional<T> scalar(const Field& field, const Parser<T>& parser) {
    std::optional<std::string> text = this->text(field, parser.what);
    if (!text) return std::nullopt;
    Parsed<T> parsed = parser.parse(*text);
    if (!parsed.value) error(field, std::move(parsed.error));
    return std::move(parsed.value);
  }

 private:
  Diagnostics& diagnostics_;
  const EnvLookup& env_;
};

enum class Need { Optional, Required };

class ObjectReader {
 public:
  // `field.value` should be a map. An empty value reads as an empty map, so a section whose
  // entries are all commented out is fine; anything else is reported once and every lookup then
  // finds nothing (no cascade of "missing key" errors).
  ObjectReader(Context& context, Field field);
  ObjectReader(const ObjectReader&) = delete;
  ObjectReader& operator=(const ObjectReader&) = delete;

  Context& context() { return context_; }
  const Field& self() const { return self_; }
  bool isMap() const { return is_map_; }
  size_t size() const { return entries_.size(); }

  // Declares `key` as allowed and returns it when present; reports it when required and absent
  // (at the map, since the key has no position of its own).
  std::optional<Field> field(std::string_view key, Need need = Need::Optional);

  // Whether `key` is present; does not declare or use it.
  bool has(std::string_view key) const;

  // Reads `key` with `parser` into `out`. True when present and valid; `out` is untouched
  // otherwise, so it keeps its default.
  template <typename T>
  bool scalar(std::string_view key, std::type_identity_t<T>& out, const Parser<T>& parser,
              Need need = Need::Optional) {
    std::optional<Field> found = field(key, need);
    if (!found) return false;
    std::optional<T> value = context_.scalar(*found, parser);
    if (!value) return false;
    out = std::move(*value);
    return true;
  }

  // Reads the nested map `key` with `read`, then reports its unknown keys. True when present.
  bool object(std::string_view key, Need need, const std::function<void(ObjectReader&)>& read);

  // Visits every entry of a map whose keys are names, not fields (stores, kafka.properties).
  void forEach(const std::function<void(const Field&)>& visit);

  // Declares `key` as one kpipe knows but does not support yet; reports it at the key when
  // present. True when present.
  bool unsupported(std::string_view key, std::string message);

  // Reports a problem about `key` at its value, or at this map when the key is absent (a rule
  // that involves a default).
  void error(std::string_view key, std::string message);

  // After an error that makes the other keys meaningless (a store type kpipe cannot run, whose
  // fields it does not know): do not report them as unknown.
  void ignoreUnknownKeys() { report_unknown_ = false; }

  // Reports every key nobody asked for.
  void finish();

 private:
  struct Entry {
    Field field;
    bool used = false;
  };

  Context& context_;
  Field self_;
  bool is_map_ = false;
  bool report_unknown_ = true;
  std::vector<Entry> entries_;  // in file order, without duplicates
  // Key -> position in entries_; a map so that a file with very many keys stays O(n log n).
  std::map<std::string, size_t, std::less<>> index_;
  std::vector<std::string> known_keys_;
};

// Reads `field` as a map with `read` and finishes it.
void readObject(Context& context, const Field& field,
                const std::function<void(ObjectReader&)>& read);

// "a map", "a list", "an empty value", `the string "abc"`.
std::string describe(const YAML::Node& node);
// `"text"`, shortened and with line breaks escaped, for messages.
std::string quote(std::string_view text);
// The candidate closest to `word` within edit distance 2, if any (first wins a tie).
std::optional<std::string> suggest(std::string_view word,
                                   const std::vector<std::string>& candidates);
std::string joinPath(std::string_view parent, std::string_view key);
// "1500ms", "30s", "7d": the largest unit that divides evenly.
std::string formatDuration(Duration duration);

// --- Parsers for the scalar types of the format ----------------------------------------------

Parser<std::string> anyString();
Parser<std::string> nonEmptyString();
// [A-Za-z0-9._-]+: pipeline names end up in metric labels, file names and consumer client ids.
Parser<std::string> identifier();
// RFC 6901: "" (the whole document) or "/a/b", where "~" is only ever "~0" or "~1".
Parser<std::string> jsonPointer();
Parser<bool> boolean();
Parser<double> numberIn(double min, double max);
Parser<Duration> durationAtLeast(Duration min);
Parser<uint64_t> sizeAtLeast(uint64_t min);

template <typename I>
Parser<I> integerIn(I min, I max = std::numeric_limits<I>::max()) {
  return {"an integer", [min, max](std::string_view text) {
            I value{};
            const char* end = text.data() + text.size();
            auto [ptr, ec] = std::from_chars(text.data(), end, value);
            if (ec == std::errc::result_out_of_range ||
                (ec == std::errc() && ptr == end && (value < min || value > max))) {
              std::string range =
                  max == std::numeric_limits<I>::max()
                      ? "at least " + std::to_string(min)
                      : "between " + std::to_string(min) + " and " + std::to_string(max);
              return Parsed<I>::fail(quote(text) + " is out of range (must be " + range + ")");
            }
            if (ec != std::errc() || ptr != end || text.empty()) {
              return Parsed<I>::fail(quote(text) + " is not an integer");
            }
            return Parsed<I>::ok(value);
          }};
}

// One of a fixed set of words, e.g. {{"json", LogFormat::Json}, {"text", LogFormat::Text}}.
template <typename E>
Parser<E> oneOf(std::vector<std::pair<std::string, E>> choices) {
  std::string what = "one of";
  for (size_t i = 0; i < choices.size(); ++i) what += (i == 0 ? " " : ", ") + choices[i].first;
  return {what, [choices = std::move(choices), what](std::string_view text) {
            std::vector<std::string> words;
            for (const auto& [word, value] : choices) {
              if (word == text) return Parsed<E>::ok(value);
              words.push_back(word);
            }
            std::string message = quote(text) + " is not " + what;
            if (auto close = suggest(text, words)) message += " (did you mean \"" + *close + "\"?)";
            return Parsed<E>::fail(std::move(message));
          }};
}

// Config files are small; a bigger one is a mistake (or an attack on the parser) and is refused
// before yaml-cpp sees it.
inline constexpr size_t kMaxConfigFileBytes = size_t{4} << 20;

// Reads a whole regular file of at most `max_bytes`; `kind` names such a file in the message
// set in `error` when it cannot ("file is larger than 4 MiB, the limit for a config file").
std::optional<std::string> readLimitedFile(const std::filesystem::path& path, size_t max_bytes,
                                           std::string_view kind, std::string& error);

// Reads and parses one YAML file of at most `max_bytes` holding one document; `kind` names
// such a file in messages ("a config file"). A null node for an empty file; nullopt after a
// reported error (missing, unreadable, too large, syntax, several documents).
std::optional<YAML::Node> parseYamlFile(const std::filesystem::path& path, Diagnostics& diagnostics,
                                        size_t max_bytes, std::string_view kind);

}  // namespace kpipe::config::detail
