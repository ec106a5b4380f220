#include "daemon/plan/samples.h"

#include "daemon/pipetest/runner.h"
#include "daemon/pipetest/test_file.h"
#include "daemon/schema/rapidjson.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>

namespace kpipe::plan {
namespace fs = std::filesystem;

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isLower(char c) { return c >= 'a' && c <= 'z'; }
bool isUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool isAlnum(char c) { return isDigit(c) || isLower(c) || isUpper(c); }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// A hex string: at least 8 letters and digits, all of them hex digits, and at least one digit
// (so that "deadbeef" counts and "facade" does not). UUIDs, hashes, trace ids.
bool looksHex(std::string_view text) {
  size_t alnum = 0;
  bool digit = false;
  for (char c : text) {
    if (!isAlnum(c)) continue;
    if (!isHex(c)) return false;
    ++alnum;
    digit = digit || isDigit(c);
  }
  return alnum >= 8 && digit;
}

uint64_t saturatingMultiply(uint64_t a, uint64_t b) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) {
    return std::numeric_limits<uint64_t>::max();
  }
  return a * b;
}

uint64_t radixOf(char c, bool hex) {
  if (hex) return 16;
  return isDigit(c) ? 10 : 26;
}

// The alphabet position `c` is written in, digit `d` of it.
char digitOf(char original, uint64_t d, bool hex, bool upper_hex) {
  if (hex) {
    const char* alphabet = upper_hex ? "0123456789ABCDEF" : "0123456789abcdef";
    return alphabet[d];
  }
  if (isDigit(original)) return static_cast<char>('0' + d);
  if (isLower(original)) return static_cast<char>('a' + d);
  return static_cast<char>('A' + d);
}

// SAX handler that finds the scalar at a JSON pointer: the path of the value being read is the
// stack of open containers (member name or element index each), compared with the pointer's
// tokens; the literal starts after the separator that follows the previous token.
class Locator : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Locator> {
 public:
  Locator(std::string_view json, rapidjson::MemoryStream& stream, std::vector<std::string> target)
      : json_(json), stream_(stream), target_(std::move(target)) {}

  bool Null() { return value(false, ScalarSpan::Type::String, {}); }
  bool Bool(bool) { return value(false, ScalarSpan::Type::String, {}); }
  bool Int(int) { return number(ScalarSpan::Type::Integer); }
  bool Uint(unsigned) { return number(ScalarSpan::Type::Integer); }
  bool Int64(int64_t) { return number(ScalarSpan::Type::Integer); }
  bool Uint64(uint64_t) { return number(ScalarSpan::Type::Integer); }
  bool Double(double) { return number(ScalarSpan::Type::Number); }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    return value(true, ScalarSpan::Type::String, std::string(text, length));
  }
  bool StartObject() {
    enter();
    frames_.push_back({true, {}, 0, false});
    return mark();
  }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    frames_.back().key.assign(text, length);
    return mark();
  }
  bool EndObject(rapidjson::SizeType) {
    frames_.pop_back();
    return mark();
  }
  bool StartArray() {
    enter();
    frames_.push_back({false, {}, 0, false});
    return mark();
  }
  bool EndArray(rapidjson::SizeType) {
    frames_.pop_back();
    return mark();
  }

  std::optional<ScalarSpan> found;

 private:
  struct Frame {
    bool object;
    std::string key;       // objects: the member being read
    size_t index = 0;      // arrays: the element being read
    bool started = false;  // arrays: an element has started
  };

  // A value starts: in an array it is the next element. Returns whether its path is the target.
  bool enter() {
    if (!frames_.empty() && !frames_.back().object) {
      Frame& array = frames_.back();
      array.index += array.started ? 1 : 0;
      array.started = true;
    }
    if (frames_.size() != target_.size()) return false;
    for (size_t i = 0; i < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      if (f.object ? f.key != target_[i] : std::to_string(f.index) != target_[i]) return false;
    }
    return true;
  }

  bool number(ScalarSpan::Type type) { return value(true, type, {}); }

  bool value(bool scalar, ScalarSpan::Type type, std::string text) {
    const bool at_target = enter();
    if (at_target && scalar && !found) {
      size_t begin = previous_end_;
      while (begin < json_.size() &&
             std::string_view(" \t\r\n:,[").find(json_[begin]) != std::string_view::npos) {
        ++begin;
      }
      const size_t end = stream_.Tell();
      ScalarSpan span;
      span.type = type;
      span.begin = begin;
      span.end = end;
      span.text = type == ScalarSpan::Type::String ? std::move(text)
                                                   : std::string(json_.substr(begin, end - begin));
      found = std::move(span);
    }
    return mark();
  }

  bool mark() {
    previous_end_ = stream_.Tell();
    return true;
  }

  std::string_view json_;
  rapidjson::MemoryStream& stream_;
  std::vector<std::string> target_;
  std::vector<Frame> frames_;
  size_t previous_end_ = 0;
};

std::string trimmed(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  return std::string(line);
}

bool isJson(std::string_view text) {
  rapidjson::Document document;
  document.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  return !document.HasParseError();
}

}  // namespace

size_t Sample::bytes() const {
  size_t total = (key ? key->size() : 0) + (value ? value->size() : 0);
  for (const auto& [name, text] : headers) total += name.size() + text.size();
  return total;
}

std::variant<std::vector<Sample>, std::string> parseSampleLines(std::string_view text,
                                                                const std::string& display) {
  std::vector<Sample> samples;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    const std::string line = trimmed(text.substr(0, newline));
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    ++line_number;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = display + ":" + std::to_string(line_number) + ": ";
    if (isJson(line)) {
      samples.push_back(Sample{std::nullopt, line, {}});
      continue;
    }
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      return where + "not JSON: a line is one message value (JSON), or KEY<TAB>VALUE";
    }
    std::string value = line.substr(tab + 1);
    if (!isJson(value)) return where + "the value after the tab is not JSON";
    samples.push_back(Sample{line.substr(0, tab), std::move(value), {}});
  }
  if (samples.empty()) return display + ": no sample messages (one JSON value per line)";
  return samples;
}

std::variant<Samples, std::string> readSampleFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return file.string() + ": cannot read the sample file";
  std::ostringstream text;
  text << in.rdbuf();
  auto parsed = parseSampleLines(text.str(), file.string());
  if (auto* error = std::get_if<std::string>(&parsed)) return *error;
  return Samples{std::move(std::get<std::vector<Sample>>(parsed)), file.string()};
}

Samples samplesFromTests(const config::Config& config, const config::PipelineSpec& pipeline) {
  // Which pipeline a test file tests, as `kpipe test` decides (pipetest/runner.cpp): its
  // `pipeline:`, else the pipeline file <stem>.yaml next to it, else the pipeline named <stem>.
  auto tests = [&](const pipetest::TestFile& file) {
    if (!file.pipeline.empty()) return file.pipeline == pipeline.name;
    std::string stem = file.path.filename().string();
    for (std::string_view suffix : {".test.yaml", ".test.yml"}) {
      if (stem.ends_with(suffix)) stem.resize(stem.size() - suffix.size());
    }
    for (const auto& p : config.pipelines) {
      std::error_code ec1, ec2;
      const fs::path defined(p.where.file);
      if (defined.stem() == stem && fs::weakly_canonical(defined.parent_path(), ec1) ==
                                        fs::weakly_canonical(file.path.parent_path(), ec2)) {
        return p.name == pipeline.name;
      }
    }
    return stem == pipeline.name;
  };
  Samples out;
  std::vector<Sample> all;
  std::vector<std::string> files;
  for (const fs::path& path : pipetest::discoverTestFiles(config)) {
    // Files that do not parse are `kpipe test`'s to report; here they give no samples.
    pipetest::ParseResult parsed = pipetest::parseTestFile(path, {.expect_optional = true});
    if (!parsed.ok() || !tests(*parsed.file)) continue;
    files.push_back(path.filename().string());
    for (const pipetest::Case& c : parsed.file->cases) {
      const bool output = c.expect && c.expect->route == pipeline::Route::Output;
      for (const pipetest::Message& m : c.input) {
        if (!m.value) continue;  // a tombstone measures nothing
        Sample sample{m.key, m.value, m.headers};
        if (output) out.messages.push_back(sample);
        all.push_back(std::move(sample));
      }
    }
  }
  std::string names;
  for (const auto& f : files) names += (names.empty() ? "" : ", ") + f;
  if (!out.messages.empty()) {
    out.source = "the cases of " + names + " that expect the output";
  } else if (!all.empty()) {
    out.messages = std::move(all);
    out.source = "the cases of " + names + " (none expects the output)";
  }
  return out;
}

uint64_t capacityOf(std::string_view original, uint64_t capacity) {
  const bool hex = looksHex(original);
  uint64_t total = 1;
  bool any = false;
  for (size_t i = original.size(); i-- > 0 && total < capacity;) {
    if (!isAlnum(original[i])) continue;
    total = saturatingMultiply(total, radixOf(original[i], hex));
    any = true;
  }
  return any ? total : std::numeric_limits<uint64_t>::max();
}

std::string reshape(std::string_view original, uint64_t value, uint64_t capacity) {
  std::string out(original);
  const bool hex = looksHex(original);
  // Upper-case hex digits when the string has upper-case letters and no lower-case ones.
  const bool upper_hex = hex && std::any_of(original.begin(), original.end(), isUpper) &&
                         std::none_of(original.begin(), original.end(), isLower);
  uint64_t total = 1;
  bool any = false;
  for (size_t i = out.size(); i-- > 0 && total < capacity;) {
    if (!isAlnum(out[i])) continue;
    const uint64_t radix = radixOf(out[i], hex);
    out[i] = digitOf(out[i], value % radix, hex, upper_hex);
    value /= radix;
    total = saturatingMultiply(total, radix);
    any = true;
  }
  if (!any) out += std::to_string(value);
  return out;
}

std::string jsonString(std::string_view text) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::optional<ScalarSpan> findScalar(std::string_view json, const std::string& pointer) {
  rapidjson::Pointer parsed(pointer.c_str());
  if (!parsed.IsValid()) return std::nullopt;
  std::vector<std::string> tokens;
  for (size_t i = 0; i < parsed.GetTokenCount(); ++i) {
    const auto& token = parsed.GetTokens()[i];
    tokens.emplace_back(token.name, token.length);
  }
  rapidjson::MemoryStream stream(json.data(), json.size());
  Locator locator(json, stream, std::move(tokens));
  rapidjson::Reader reader;
  try {
    if (reader.Parse<rapidjson::kParseIterativeFlag>(stream, locator).IsError()) {
      return std::nullopt;
    }
  } catch (const schema::RapidJsonAssertion&) {
    return std::nullopt;
  }
  return locator.found;
}

std::string CopyMaker::freshLiteral(ScalarSpan::Type type, std::string_view original,
                                    uint64_t value, uint64_t capacity) {
  if (type == ScalarSpan::Type::String) return jsonString(reshape(original, value, capacity));
  // A number stays a number: a positive integer below capacity (+1: not 0).
  return std::to_string(value % capacity + 1);
}

CopyMaker::CopyMaker(std::vector<Sample> samples, Options options) : options_(std::move(options)) {
  for (Sample& sample : samples) {
    Prepared p{std::move(sample), std::nullopt, std::nullopt};
    if (p.sample.value) {
      if (!options_.id_pointer.empty()) p.id = findScalar(*p.sample.value, options_.id_pointer);
      // The key is the id (key: /msg_id): fresh per copy already.
      if (options_.keys > 0 && options_.key_pointer != options_.id_pointer) {
        p.key = findScalar(*p.sample.value, options_.key_pointer);
      }
      // An empty string is an error the router reports; a fresh one would hide it.
      if (p.id && p.id->type == ScalarSpan::Type::String && p.id->text.empty()) p.id.reset();
      if (p.key && p.key->type == ScalarSpan::Type::String && p.key->text.empty()) p.key.reset();
    }
    ids_rewritten_ += p.id ? 1 : 0;
    keys_rewritten_ += p.key ? 1 : 0;
    samples_.push_back(std::move(p));
  }
}

const Sample& CopyMaker::make(uint64_t n, std::string& value) const {
  const Prepared& p = samples_[n % samples_.size()];
  value.clear();
  if (!p.sample.value) return p.sample;
  const std::string& text = *p.sample.value;
  // The two literals in text order, each with its replacement.
  struct Edit {
    const ScalarSpan* span;
    std::string literal;
  };
  Edit edits[2];
  size_t count = 0;
  if (p.id) {
    edits[count++] = {
        &*p.id, freshLiteral(p.id->type, p.id->text, options_.salt + n, CopyMaker::kIdCapacity)};
  }
  if (p.key) {
    edits[count++] = {&*p.key,
                      freshLiteral(p.key->type, p.key->text, n % options_.keys, options_.keys)};
  }
  if (count == 2 && edits[1].span->begin < edits[0].span->begin) std::swap(edits[0], edits[1]);
  size_t at = 0;
  for (size_t i = 0; i < count; ++i) {
    value.append(text, at, edits[i].span->begin - at);
    value += edits[i].literal;
    at = edits[i].span->end;
  }
  value.append(text, at, std::string::npos);
  return p.sample;
}

double CopyMaker::averageBytes() const {
  if (samples_.empty()) return 0;
  double total = 0;
  for (const auto& p : samples_) total += static_cast<double>(p.sample.bytes());
  return total / static_cast<double>(samples_.size());
}

}  // namespace kpipe::plan
