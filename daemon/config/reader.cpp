#include "daemon/config/reader.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace kpipe::config::detail {

namespace {
thread_local KeyInventory* recording = nullptr;
}  // namespace

RecordKeys::RecordKeys(KeyInventory& inventory) : previous_(recording) { recording = &inventory; }
RecordKeys::~RecordKeys() { recording = previous_; }

void Diagnostics::error(const YAML::Mark& at, std::string key_path, std::string message) {
  // yaml-cpp uses -1 for "no position" (null_mark); report those as file-level.
  SourceLocation where{file_, at.line < 0 ? 0 : at.line + 1, at.line < 0 ? 0 : at.column + 1};
  errors_.push_back(ConfigError{std::move(where), std::move(key_path), std::move(message)});
}

void Diagnostics::fileError(std::string key_path, std::string message) {
  errors_.push_back(
      ConfigError{SourceLocation{file_, 0, 0}, std::move(key_path), std::move(message)});
}

std::vector<ConfigError> Diagnostics::take() {
  // Reading order is not file order (unknown keys are found last); users read top to bottom.
  std::stable_sort(errors_.begin(), errors_.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.where.line, a.where.column) < std::pair(b.where.line, b.where.column);
  });
  return std::move(errors_);
}

std::optional<std::string> Context::text(const Field& field, std::string_view what) {
  if (field.reads_file) return readSecretFile(field);
  if (!field.value.IsScalar()) {
    error(field, "expected " + std::string(what) + ", got " + describe(field.value));
    return std::nullopt;
  }
  InterpolationResult result = interpolate(field.value.Scalar(), env_);
  if (result.error) {
    error(field, std::move(*result.error));
    return std::nullopt;
  }
  return std::move(result.value);
}

std::optional<std::string> Context::readSecretFile(const Field& field) {
  Field path_field = field;
  path_field.reads_file = false;
  std::optional<std::string> path = text(path_field, "a file path");
  if (!path) return std::nullopt;
  if (path->empty()) {
    error(field, "expected the path of a file holding the value, got an empty string");
    return std::nullopt;
  }
  const std::filesystem::path resolved = (base_dir_ / *path).lexically_normal();
  std::string problem;
  std::optional<std::string> content =
      readLimitedFile(resolved, kMaxSecretFileBytes, "a secret file", problem);
  if (!content) {
    error(field, "cannot read " + resolved.string() + ": " + problem +
                     (problem == "file not found"
                          ? " (relative paths start at the directory of kpipe.yaml)"
                          : ""));
    return std::nullopt;
  }
  if (content->ends_with("\r\n")) {
    content->resize(content->size() - 2);
  } else if (content->ends_with('\n')) {
    content->pop_back();
  }
  if (content->find_first_of("\r\n") != std::string::npos) {
    error(field, resolved.string() + " has a line break inside; only one at the end is allowed" +
                     (field.path.find(".pem") != std::string::npos
                          ? " (for PEM keys and certificates use librdkafka's ssl.key.location, "
                            "ssl.certificate.location and ssl.ca.location)"
                          : ""));
    return std::nullopt;
  }
  if (content->find('\0') != std::string::npos) {
    error(field, resolved.string() + " holds a NUL byte");
    return std::nullopt;
  }
  secret_files_.push_back(SecretFile{resolved, std::hash<std::string>{}(*content)});
  return content;
}

std::string Context::secretDigests(size_t first) const {
  std::string out;
  for (size_t i = first; i < secret_files_.size(); ++i) {
    out += "\n# secret " + secret_files_[i].path.string() + " " +
           std::to_string(secret_files_[i].digest);
  }
  return out;
}

ObjectReader::ObjectReader(Context& context, Field field)
    : context_(context), self_(std::move(field)) {
  if (recording != nullptr) {
    inventory_ = &recording->maps[{context_.diagnostics().file(), self_.path}];
  }
  if (self_.value.IsNull()) {
    is_map_ = true;
    return;
  }
  if (!self_.value.IsMap()) {
    context_.error(self_, "expected a map, got " + describe(self_.value));
    return;
  }
  is_map_ = true;
  // Entries by value: yaml-cpp's iterator hands out proxies that do not outlive the expression.
  for (const auto& pair : self_.value) {
    YAML::Node key = pair.first;
    if (!key.IsScalar()) {
      context_.diagnostics().error(key.Mark(), self_.path,
                                   "keys must be plain words, got " + describe(key));
      continue;
    }
    Field entry{key.Scalar(), joinPath(self_.path, key.Scalar()), key.Mark(), pair.second};
    auto [first, inserted] = index_.emplace(entry.name, entries_.size());
    if (!inserted) {
      // yaml-cpp 0.7 keeps both entries and lookups see only the first: the second would be
      // silently ignored.
      context_.errorAtKey(
          entry, "duplicate key " + quote(entry.name) + " (first at line " +
                     std::to_string(entries_[first->second].field.key_mark.line + 1) + ")");
      continue;
    }
    entries_.push_back(Entry{std::move(entry), false});
  }
}

void ObjectReader::record(std::string_view key, std::string_view what) {
  if (inventory_ == nullptr) return;
  inventory_->keys.emplace(key);
  inventory_->what.emplace(std::string(key), std::string(what));
}

std::optional<Field> ObjectReader::field(std::string_view key, Need need) {
  if (std::find(known_keys_.begin(), known_keys_.end(), key) == known_keys_.end()) {
    known_keys_.emplace_back(key);
  }
  if (inventory_ != nullptr) inventory_->keys.emplace(key);
  if (auto found = index_.find(key); found != index_.end()) {
    Entry& entry = entries_[found->second];
    entry.used = true;
    return entry.field;
  }
  if (need == Need::Required && is_map_) {
    context_.diagnostics().error(self_.valueMark(), joinPath(self_.path, key),
                                 "missing required key \"" + std::string(key) + "\"");
  }
  return std::nullopt;
}

std::optional<Field> ObjectReader::stringField(std::string_view key, Need need) {
  if (!context_.filesAllowed()) return field(key, need);
  const std::string file_key = std::string(key) + "_file";
  if (std::find(file_keys_.begin(), file_keys_.end(), file_key) == file_keys_.end()) {
    file_keys_.push_back(file_key);
  }
  if (inventory_ != nullptr) inventory_->file_keys.emplace(key);
  auto found = index_.find(file_key);
  if (found == index_.end()) return field(key, need);
  Entry& entry = entries_[found->second];
  entry.used = true;
  if (field(key, Need::Optional)) {
    context_.errorAtKey(entry.field, "give " + std::string(key) + " or " + file_key + ", not both");
    return std::nullopt;
  }
  Field out = entry.field;
  out.reads_file = true;
  return out;
}

bool ObjectReader::has(std::string_view key) const { return index_.find(key) != index_.end(); }

bool ObjectReader::object(std::string_view key, Need need,
                          const std::function<void(ObjectReader&)>& read) {
  std::optional<Field> found = field(key, need);
  if (!found) return false;
  readObject(context_, *found, read);
  return true;
}

void ObjectReader::forEach(const std::function<void(const Field&)>& visit) {
  if (inventory_ != nullptr) inventory_->names = true;
  for (Entry& entry : entries_) {
    entry.used = true;
    visit(entry.field);
  }
}

void ObjectReader::forEachString(
    const std::function<void(const std::string& name, const Field&)>& visit) {
  constexpr std::string_view kSuffix = "_file";
  if (inventory_ != nullptr) inventory_->names = inventory_->string_names = true;
  for (Entry& entry : entries_) {
    entry.used = true;
    const std::string& name = entry.field.name;
    if (!context_.filesAllowed() || name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) {
      visit(name, entry.field);
      continue;
    }
    const std::string plain = name.substr(0, name.size() - kSuffix.size());
    if (has(plain)) {
      context_.errorAtKey(entry.field, "give " + plain + " or " + name + ", not both");
      continue;
    }
    Field from_file = entry.field;
    from_file.reads_file = true;
    visit(plain, from_file);
  }
}

bool ObjectReader::unsupported(std::string_view key, std::string message) {
  std::optional<Field> found = field(key);
  if (found) context_.errorAtKey(*found, std::move(message));
  return found.has_value();
}

void ObjectReader::error(std::string_view key, std::string message) {
  if (auto found = index_.find(key); found != index_.end()) {
    context_.error(entries_[found->second].field, std::move(message));
    return;
  }
  context_.diagnostics().error(self_.valueMark(), joinPath(self_.path, key), std::move(message));
}

void ObjectReader::finish() {
  if (!report_unknown_) return;
  for (const Entry& entry : entries_) {
    if (entry.used) continue;
    std::string message = "unknown key " + quote(entry.field.name);
    std::vector<std::string> candidates = known_keys_;
    candidates.insert(candidates.end(), file_keys_.begin(), file_keys_.end());
    if (auto close = suggest(entry.field.name, candidates)) {
      message += " (did you mean \"" + *close + "\"?)";
    } else if (!known_keys_.empty()) {
      message += " (expected one of:";
      for (size_t i = 0; i < known_keys_.size(); ++i) {
        message += (i == 0 ? " " : ", ") + known_keys_[i];
      }
      message += ")";
    }
    context_.errorAtKey(entry.field, std::move(message));
  }
}

void readObject(Context& context, const Field& field,
                const std::function<void(ObjectReader&)>& read) {
  ObjectReader reader(context, field);
  read(reader);
  reader.finish();
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "the string " + quote(node.Scalar());
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "an empty value";
}

std::string quote(std::string_view text) {
  constexpr size_t kMaxShown = 60;
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    switch (text[i]) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '"':
        out += "\\\"";
        break;
      default:
        out += text[i];
    }
  }
  if (text.size() > kMaxShown) out += "...";
  return out + "\"";
}

namespace {

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::optional<std::string> suggest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
  constexpr size_t kMaxDistance = 2;
  std::optional<std::string> best;
  size_t best_distance = kMaxDistance + 1;
  for (const std::string& candidate : candidates) {
    // Cheap bound first: a long unknown key costs nothing against short candidates.
    size_t length_gap = word.size() > candidate.size() ? word.size() - candidate.size()
                                                       : candidate.size() - word.size();
    if (length_gap > kMaxDistance) continue;
    size_t distance = editDistance(word, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

std::string joinPath(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string path(parent);
  path += '.';
  path += key;
  return path;
}

std::string formatDuration(Duration duration) {
  struct Unit {
    int64_t ms;
    const char* suffix;
  };
  static constexpr Unit kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1'000, "s"}};
  int64_t ms = duration.count();
  for (const Unit& unit : kUnits) {
    if (ms != 0 && ms % unit.ms == 0) return std::to_string(ms / unit.ms) + unit.suffix;
  }
  return std::to_string(ms) + "ms";
}

Parser<std::string> anyString() {
  return {"a string",
          [](std::string_view text) { return Parsed<std::string>::ok(std::string(text)); },
          /*from_file=*/true};
}

Parser<std::string> nonEmptyString() {
  return {"a string",
          [](std::string_view text) {
            if (text.empty()) return Parsed<std::string>::fail("must not be empty");
            return Parsed<std::string>::ok(std::string(text));
          },
          /*from_file=*/true};
}

Parser<std::string> identifier() {
  return {"a name", [](std::string_view text) {
            auto allowed = [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '_' || c == '-';
            };
            if (text.empty() || !std::all_of(text.begin(), text.end(), allowed)) {
              return Parsed<std::string>::fail(
                  quote(text) + " is not a valid name (use letters, digits, '.', '_' and '-')");
            }
            return Parsed<std::string>::ok(std::string(text));
          }};
}

Parser<std::string> jsonPointer() {
  return {"a JSON pointer", [](std::string_view text) {
            if (!text.empty() && text.front() != '/') {
              return Parsed<std::string>::fail(quote(text) + " is not a JSON pointer (write \"/" +
                                               std::string(text.substr(0, 60)) + "\")");
            }
            for (size_t i = 0; i < text.size(); ++i) {
              if (text[i] == '~' &&
                  (i + 1 == text.size() || (text[i + 1] != '0' && text[i + 1] != '1'))) {
                return Parsed<std::string>::fail(
                    quote(text) +
                    " is not a valid JSON pointer: \"~\" must be followed by 0 or 1 (\"~0\" is "
                    "\"~\", \"~1\" is \"/\")");
              }
            }
            return Parsed<std::string>::ok(std::string(text));
          }};
}

Parser<bool> boolean() {
  return {"true or false", [](std::string_view text) {
            if (text == "true") return Parsed<bool>::ok(true);
            if (text == "false") return Parsed<bool>::ok(false);
            return Parsed<bool>::fail(quote(text) + " is not a boolean (use true or false)");
          }};
}

Parser<double> numberIn(double min, double max) {
  return {"a number", [min, max](std::string_view text) {
            double value = 0;
            const char* end = text.data() + text.size();
            auto [ptr, ec] = std::from_chars(text.data(), end, value);
            // from_chars accepts "inf" and "nan"; neither is a useful setting.
            if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(value)) {
              return Parsed<double>::fail(quote(text) + " is not a number");
            }
            if (value < min || value > max) {
              auto show = [](double d) {
                std::string s = std::to_string(d);
                s.erase(s.find_last_not_of('0') + 1);
                if (s.back() == '.') s.pop_back();
                return s;
              };
              std::string range = max == std::numeric_limits<double>::infinity()
                                      ? "at least " + show(min)
                                      : "between " + show(min) + " and " + show(max);
              return Parsed<double>::fail(quote(text) + " is out of range (must be " + range + ")");
            }
            return Parsed<double>::ok(value);
          }};
}

Parser<Duration> durationAtLeast(Duration min) {
  return {"a duration", [min](std::string_view text) {
            std::optional<Duration> value = parseDuration(text);
            if (!value) {
              return Parsed<Duration>::fail(quote(text) +
                                            " is not a duration (use e.g. 250ms, 30s, 5m, 2h, 7d)");
            }
            if (*value < min) {
              return Parsed<Duration>::fail(quote(text) + " is too short (must be at least " +
                                            formatDuration(min) + ")");
            }
            return Parsed<Duration>::ok(*value);
          }};
}

Parser<Duration> durationBetween(Duration min, Duration max) {
  Parser<Duration> at_least = durationAtLeast(min);
  return {"a duration", [at_least, max](std::string_view text) {
            Parsed<Duration> parsed = at_least.parse(text);
            if (parsed.value && *parsed.value > max) {
              return Parsed<Duration>::fail(quote(text) + " is too long (must be at most " +
                                            formatDuration(max) + ")");
            }
            return parsed;
          }};
}

Parser<uint64_t> sizeAtLeast(uint64_t min) {
  return {
      "a size", [min](std::string_view text) {
        std::optional<uint64_t> value = parseSize(text);
        if (!value) {
          return Parsed<uint64_t>::fail(quote(text) +
                                        " is not a size (use e.g. 1048576, 512KiB, 1MiB, 1GiB)");
        }
        if (*value < min) {
          return Parsed<uint64_t>::fail(quote(text) + " is too small (must be at least " +
                                        std::to_string(min) + (min == 1 ? " byte)" : " bytes)"));
        }
        return Parsed<uint64_t>::ok(*value);
      }};
}

std::optional<std::string> readLimitedFile(const std::filesystem::path& path, size_t max_bytes,
                                           std::string_view kind, std::string& error) {
  std::error_code ec;
  std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) {
    error = "file not found";
    return std::nullopt;
  }
  if (!std::filesystem::is_regular_file(status)) {
    error = "not a regular file";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = std::string("cannot open: ") + std::strerror(errno);
    return std::nullopt;
  }
  // Read at most one chunk past the limit rather than trusting the size from stat: the file may
  // be growing, or be something whose size stat does not know.
  std::string content;
  char chunk[64 * 1024];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    content.append(chunk, static_cast<size_t>(in.gcount()));
    if (content.size() > max_bytes) {
      error = "file is larger than " +
              (max_bytes % (size_t{1} << 20) == 0 ? std::to_string(max_bytes >> 20) + " MiB"
                                                  : std::to_string(max_bytes >> 10) + " KiB") +
              ", the limit for " + std::string(kind);
      return std::nullopt;
    }
  }
  if (in.bad()) {
    error = std::string("cannot read: ") + std::strerror(errno);
    return std::nullopt;
  }
  return content;
}

namespace {

// Notes where each document of a YAML stream starts, and where its root node is; builds nothing.
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  std::vector<YAML::Mark> roots;  // as YAML::Node::Mark() gives it, for messages

  void OnDocumentStart(const YAML::Mark& mark) override {
    starts.push_back(mark);
    depth_ = 0;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark);
    ++depth_;
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(mark);
    ++depth_;
  }
  void OnMapEnd() override { --depth_; }

 private:
  void node(const YAML::Mark& mark) {
    if (depth_ == 0 && roots.size() < starts.size()) roots.push_back(mark);
  }
  int depth_ = 0;
};

}  // namespace

// Reads and parses one YAML file. Null node for an empty file; nullopt after a reported error.
std::optional<YAML::Node> parseYamlFile(const std::filesystem::path& path, Diagnostics& diagnostics,
                                        size_t max_bytes, std::string_view kind) {
  std::string error;
  std::optional<std::string> content = readLimitedFile(path, max_bytes, kind, error);
  if (!content) {
    diagnostics.fileError("", error);
    return std::nullopt;
  }
  YAML::Node root;
  try {
    // Not YAML::LoadAll: in yaml-cpp 0.7, a document that starts with a stray "," makes its
    // parser return the same empty document forever without consuming anything, and LoadAll
    // keeps them all: a one-byte file hangs the loader (and a reload) until memory runs out
    // (jbeder/yaml-cpp#1040, fixed upstream in LoadAll by #1319). So the documents are counted
    // with a parser that stops when one starts where the previous one did, and the first is
    // then loaded on its own.
    std::istringstream stream(*content);
    YAML::Parser parser(stream);
    DocumentStarts documents;
    while (parser.HandleNextDocument(documents)) {
      const size_t n = documents.starts.size();
      if (n >= 2 && documents.starts[n - 1].pos == documents.starts[n - 2].pos) {
        const YAML::Mark stuck = documents.starts[n - 1];
        const size_t at = static_cast<size_t>(stuck.pos);
        diagnostics.error(stuck, "",
                          "YAML syntax error: unexpected " +
                              quote(at < content->size() ? content->substr(at, 1) : ""));
        return std::nullopt;
      }
    }
    if (documents.starts.empty()) return YAML::Node(YAML::NodeType::Null);
    if (documents.starts.size() > 1) {
      diagnostics.error(documents.roots.size() > 1 ? documents.roots[1] : documents.starts[1], "",
                        "found " + std::to_string(documents.starts.size()) +
                            " YAML documents (\"---\"); " + std::string(kind) +
                            " holds exactly one");
      return std::nullopt;
    }
    root = YAML::Load(*content);
  } catch (const YAML::DeepRecursion&) {
    // yaml-cpp's own message for this one is "bad file", and its position is wherever the
    // parser gave up.
    diagnostics.fileError("", "YAML nesting is too deep");
    return std::nullopt;
  } catch (const YAML::ParserException& e) {
    diagnostics.error(e.mark, "", "YAML syntax error: " + e.msg);
    return std::nullopt;
  }
  return root;
}

}  // namespace kpipe::config::detail
