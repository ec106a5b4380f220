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
// Secrets: every free-text string field `x` (read with anyString() or nonEmptyString()) and every
// entry NAME of a map of strings (kafka.properties, output.http.headers) may instead be written
// `x_file: PATH` / `NAME_file: PATH`: the value is then the content of that file (relative paths
// start at the directory of kpipe.yaml), one trailing newline stripped, never interpolated and
// never shown in a message.
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
#include <set>
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
  // Set for `x_file: PATH`: `value` is the path of a file that holds the value (Context::text reads
  // it), `name` and `path` are those of the x_file key.
  bool reads_file = false;
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
  // Free text (anyString, nonEmptyString): the field may also be given as `x_file`.
  bool from_file = false;
};

// Secret files (x_file) are small; a bigger one is the wrong file.
inline constexpr size_t kMaxSecretFileBytes = size_t{64} << 10;

// The keys each map of the format accepts, as the readers ask for them: tests compare them with
// config/*.schema.json. Recorded only while a RecordKeys is alive on the thread.
struct KeyInventory {
  struct Map {
    std::set<std::string> keys;               // asked for by name
    std::set<std::string> file_keys;          // of those, the ones that also accept KEY_file
    std::map<std::string, std::string> what;  // key -> what its parser expects ("one of a, b")
    bool names = false;         // entries are names, not fields (stores, kafka.properties, ...)
    bool string_names = false;  // names mapped to strings, each also as NAME_file
  };
  // By file (as Diagnostics names it) and key path ("" for the document root, "stores.ids").
  std::map<std::pair<std::string, std::string>, Map> maps;
};

class RecordKeys {
 public:
  explicit RecordKeys(KeyInventory& inventory);
  ~RecordKeys();
  RecordKeys(const RecordKeys&) = delete;
  RecordKeys& operator=(const RecordKeys&) = delete;

 private:
  KeyInventory* previous_;
};

// State shared by every reader of one file.
class Context {
 public:
  // `base_dir`: where relative x_file paths start (the directory of kpipe.yaml). Without one
  // (other formats read with these readers, e.g. `kpipe test` files) there is no x_file.
  Context(Diagnostics& diagnostics, const EnvLookup& env, std::filesystem::path base_dir = {})
      : diagnostics_(diagnostics), env_(env), base_dir_(std::move(base_dir)) {}

  Diagnostics& diagnostics() { return diagnostics_; }
  const std::filesystem::path& baseDir() const { return base_dir_; }
  bool filesAllowed() const { return !base_dir_.empty(); }
  void error(const Field& field, std::string message) {
    diagnostics_.error(field.valueMark(), field.path, std::move(message));
  }
  void errorAtKey(const Field& field, std::string message) {
    diagnostics_.error(field.key_mark, field.path, std::move(message));
  }

  // The text of a scalar after ${VAR} interpolation. Reports (and returns nullopt) when the value
  // is not a scalar — `what` names what was expected — or when interpolation fails. For a field
  // that reads a file (x_file), the content of the file (see readSecretFile).
  std::optional<std::string> text(const Field& field, std::string_view what);

  template <typename T>
  std::optional<T> scalar(const Field& field, const Parser<T>& parser) {
    std::optional<std::string> text = this->text(field, parser.what);
    if (!text) return std::nullopt;
    Parsed<T> parsed = parser.parse(*text);
    if (!parsed.value) {
      // The parser's reason may quote the value, and a value read from a file is a secret.
      error(field, !field.reads_file ? std::move(parsed.error)
                   : text->empty()   ? std::string("the file is empty")
                                     : "the content of the file is not " + parser.what);
    }
    return std::move(parsed.value);
  }

  // The files read for x_file fields, in reading order, each with a digest of what it held, so
  // that a reload can tell when a secret changed without keeping it twice.
  struct SecretFile {
    std::filesystem::path path;
    size_t digest = 0;
  };
  const std::vector<SecretFile>& secretFiles() const { return secret_files_; }
  // The digests of secretFiles() from index `first` on, as text to append to a fingerprint.
  std::string secretDigests(size_t first) const;

 private:
  // The value of an x_file field: the file's content with one trailing newline ("\n" or
  // "\r\n") removed. Refuses a missing or unreadable file, one over kMaxSecretFileBytes, and one
  // with a line break or a NUL byte inside; messages name the file, never its content.
  std::optional<std::string> readSecretFile(const Field& field);

  Diagnostics& diagnostics_;
  const EnvLookup& env_;
  std::filesystem::path base_dir_;
  std::vector<SecretFile> secret_files_;
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

  // field() for a free-text string, which may also be given as `key_file: PATH`: then the
  // returned field reads that file (Field::reads_file). Both given is an error (nullopt).
  std::optional<Field> stringField(std::string_view key, Need need = Need::Optional);

  // Whether `key` is present; does not declare or use it.
  bool has(std::string_view key) const;

  // Reads `key` with `parser` into `out`. True when present and valid; `out` is untouched
  // otherwise, so it keeps its default.
  template <typename T>
  bool scalar(std::string_view key, std::type_identity_t<T>& out, const Parser<T>& parser,
              Need need = Need::Optional) {
    record(key, parser.what);
    std::optional<Field> found = parser.from_file ? stringField(key, need) : field(key, need);
    if (!found) return false;
    std::optional<T> value = context_.scalar(*found, parser);
    if (!value) return false;
    out = std::move(*value);
    return true;
  }

  // Reads the nested map `key` with `read`, then reports its unknown keys. True when present.
  bool object(std::string_view key, Need need, const std::function<void(ObjectReader&)>& read);

  // Visits every entry of a map whose keys are names, not fields (stores, schema types).
  void forEach(const std::function<void(const Field&)>& visit);

  // Visits every entry of a map of names to strings (kafka.properties, output.http.headers) with
  // its name. An entry `NAME_file: PATH` is NAME, read from that file (Field::reads_file); NAME
  // and NAME_file both present is an error. No librdkafka property ends in "_file".
  void forEachString(const std::function<void(const std::string& name, const Field&)>& visit);

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

  // For the KeyInventory: what `key` expects. No-op unless a RecordKeys is alive.
  void record(std::string_view key, std::string_view what);

  Context& context_;
  Field self_;
  bool is_map_ = false;
  bool report_unknown_ = true;
  std::vector<Entry> entries_;  // in file order, without duplicates
  // Key -> position in entries_; a map so that a file with very many keys stays O(n log n).
  std::map<std::string, size_t, std::less<>> index_;
  std::vector<std::string> known_keys_;
  std::vector<std::string> file_keys_;  // x_file of every stringField x: suggested, not listed
  KeyInventory::Map* inventory_ = nullptr;
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
Parser<Duration> durationBetween(Duration min, Duration max);
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
