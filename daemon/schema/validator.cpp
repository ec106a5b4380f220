// GCC 12 with -fsanitize=address reports a false -Wmaybe-uninitialized inside std::regex's
// std::function members (libstdc++ headers). It is reported once the translation unit is
// optimized, so the pragma must come before every include and cannot be popped.
#if defined(__SANITIZE_ADDRESS__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "daemon/schema/validator.h"

// What kpipe does around valijson 1.0 (../shared/notes/valijson-1.0.md) happens before valijson
// parses a schema: resolve.h ($id, $ref), prepare.h (pattern, format, integer type, multipleOf,
// decimal counts, $ref cycles). Known gap left: `patternProperties` is bounded by name length only.

#include "daemon/schema/document.h"
#include "daemon/schema/fast_path.h"
#include "daemon/schema/format.h"
#include "daemon/schema/multiple_of.h"
#include "daemon/schema/pattern.h"
#include "daemon/schema/prepare.h"
#include "daemon/schema/rapidjson.h"
#include "daemon/schema/resolve.h"
#include "daemon/schema/type_constraint.h"
#include "daemon/schema/valijson.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>

namespace kpipe::schema {

// Only this file sees the definition; the header keeps it opaque.
class Schema {
 public:
  // The schema as compiled (after resolveReferences, which embeds the documents its $refs name,
  // and prepareSchema). Kept to quote the rule's operand (the allowed types, the enum, the
  // minimum) in failure messages.
  rapidjson::Document document;
  valijson::Schema compiled;
  bool uses_pattern_properties = false;
  // Answers "valid" for most messages without valijson (null when the schema uses a keyword
  // it does not handle).
  std::unique_ptr<detail::FastPath> fast;
};

namespace {

using rapidjson::Value;

constexpr size_t kMaxValueBytes = 60;     // offending values, property names
constexpr size_t kMaxOperandBytes = 100;  // enum lists, const values
constexpr std::string_view kEllipsis = "\u2026";

// ---------------------------------------------------------------------------------------------
// JSON text

// RapidJSON output stream that keeps the first `limit` bytes and notes that there were more.
class BoundedBuffer {
 public:
  using Ch = char;
  explicit BoundedBuffer(size_t limit) : limit_(limit) {}
  // Put and Flush are RapidJSON's stream concept.
  void Put(char c) {  // NOLINT(readability-identifier-naming)
    if (text_.size() <= limit_) {
      text_.push_back(c);
    }
  }
  void Flush() {}  // NOLINT(readability-identifier-naming)
  bool full() const { return text_.size() > limit_; }

  std::string take() {
    if (text_.size() > limit_) {
      size_t cut = limit_;
      while (cut > 0 && (static_cast<unsigned char>(text_[cut]) & 0xC0) == 0x80) {
        --cut;  // never split a UTF-8 sequence
      }
      text_.resize(cut);
      text_ += kEllipsis;
    }
    return std::move(text_);
  }

 private:
  size_t limit_;
  std::string text_;
};

// Renders containers itself and stops descending once past `limit`: the recursion is then at most
// `limit` levels deep, however deeply the document nests (RapidJSON's Accept() would follow it
// all the way down).
void render(const Value& value, rapidjson::Writer<BoundedBuffer>& writer, BoundedBuffer& buffer) {
  if (value.IsObject()) {
    buffer.Put('{');
    for (auto it = value.MemberBegin(); it != value.MemberEnd() && !buffer.full(); ++it) {
      if (it != value.MemberBegin()) buffer.Put(',');
      writer.Reset(buffer);  // a Writer takes one root value; each key and scalar is one here
      writer.String(it->name.GetString(), it->name.GetStringLength());
      buffer.Put(':');
      render(it->value, writer, buffer);
    }
    buffer.Put('}');
  } else if (value.IsArray()) {
    buffer.Put('[');
    for (auto it = value.Begin(); it != value.End() && !buffer.full(); ++it) {
      if (it != value.Begin()) buffer.Put(',');
      render(*it, writer, buffer);
    }
    buffer.Put(']');
  } else {
    writer.Reset(buffer);
    value.Accept(writer);
  }
}

std::string toJson(const Value& value, size_t limit) {
  BoundedBuffer buffer(limit);
  rapidjson::Writer<BoundedBuffer> writer(buffer);
  render(value, writer, buffer);
  return buffer.take();
}

std::string quote(std::string_view text, size_t limit = kMaxValueBytes) {
  BoundedBuffer buffer(limit);
  rapidjson::Writer<BoundedBuffer> writer(buffer);
  writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  return buffer.take();
}

std::optional<size_t> parseIndex(std::string_view token) {
  if (token.empty() || token.size() > 18 ||
      !std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  size_t index = 0;
  for (char c : token) {
    index = index * 10 + static_cast<size_t>(c - '0');
  }
  return index;
}

const Value* child(const Value& value, std::string_view token) {
  if (value.IsObject()) {
    const auto it = value.FindMember(
        Value(rapidjson::StringRef(token.data(), static_cast<rapidjson::SizeType>(token.size()))));
    return it == value.MemberEnd() ? nullptr : &it->value;
  }
  if (value.IsArray()) {
    const auto index = parseIndex(token);
    return index && *index < value.Size() ? &value[static_cast<rapidjson::SizeType>(*index)]
                                          : nullptr;
  }
  return nullptr;
}

const Value* member(const Value& object, const char* name) {
  const auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

// ---------------------------------------------------------------------------------------------
// Compilation

std::optional<std::string> readFile(const std::filesystem::path& file, std::string& error) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    error = "is a directory";
    return std::nullopt;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  try {
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.bad()) {
      return text;
    }
    error = "read failed";
  } catch (const std::exception& e) {  // libstdc++'s filebuf throws on some read errors
    error = e.what();
  }
  return std::nullopt;
}

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// "%20" -> " " in the path of a file: URI or a mirrored URL.
std::string percentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() &&
        std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Serves the documents `$ref`s name (resolve.h), from local files only: kpipe never fetches
// remote documents. file: URIs are read when the schema itself is a file (relative references
// from it resolve to those); other URLs only under a LocalMirror's prefix.
class LocalDocuments {
 public:
  // `root_file`: the schema's own file, when it is one; files it references must be in its
  // directory (or below).
  LocalDocuments(const std::optional<std::filesystem::path>& root_file,
                 const CompileOptions& options)
      : options_(options) {
    if (root_file) {
      std::error_code ec;
      auto dir = std::filesystem::weakly_canonical(*root_file, ec).parent_path();
      if (!ec) root_dir_ = std::move(dir);
    }
  }

  std::unique_ptr<rapidjson::Document> operator()(const std::string& uri, std::string& why) const {
    std::optional<std::filesystem::path> file;
    for (const LocalMirror& mirror : options_.mirrors) {
      if (startsWith(uri, mirror.uri_prefix)) {
        file = mirror.directory /
               percentDecode(std::string_view(uri).substr(mirror.uri_prefix.size()));
        break;
      }
    }
    if (!file && root_dir_ && startsWith(uri, "file://")) {
      file = percentDecode(std::string_view(uri).substr(std::strlen("file://")));
      // Only files under the root schema's directory: a schema names its neighbours, not any
      // file the daemon can read.
      std::error_code ec;
      const auto real = std::filesystem::weakly_canonical(*file, ec);
      const auto [end, _] =
          std::mismatch(root_dir_->begin(), root_dir_->end(), real.begin(), real.end());
      if (ec || end != root_dir_->end()) {
        why = ": " + file->string() + " is outside " + root_dir_->string() +
              " (the root schema's directory; kpipe reads referenced files only there)";
        return nullptr;
      }
    }
    if (!file) {
      why =
          " cannot be resolved: it is not the $id of a schema here, nor a file next to the "
          "schema file, and kpipe never fetches remote documents";
      return nullptr;
    }
    std::string read_error;
    const auto text = readFile(*file, read_error);
    if (!text) {
      why = ": " + file->string() + ": " + read_error;
      return nullptr;
    }
    try {
      return detail::parseSchemaDocument(*text, file->string(), detail::syntaxOf(*file));
    } catch (const std::exception& e) {
      why = std::string(": ") + e.what();
      return nullptr;
    }
  }

 private:
  std::optional<std::filesystem::path> root_dir_;
  const CompileOptions& options_;
};

// "file:///dir/schema.json" for a file; an opaque URI for text, against which a relative
// reference names nothing that can be loaded.
std::string baseUriOf(const std::optional<std::filesystem::path>& file) {
  if (!file) {
    return "kpipe:inline-schema";
  }
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(*file, ec);
  // Characters that would end the path part of the URI (or read as an escape) are encoded;
  // LocalDocuments decodes them.
  std::string uri = "file://";
  for (char c : (ec ? *file : absolute).lexically_normal().string()) {
    if (c == '%' || c == '#' || c == '?') {
      static constexpr char kHex[] = "0123456789ABCDEF";
      uri += '%';
      uri += kHex[static_cast<unsigned char>(c) >> 4];
      uri += kHex[static_cast<unsigned char>(c) & 0xF];
    } else {
      uri += c;
    }
  }
  return uri;
}

std::variant<SchemaPtr, CompileError> compile(std::string_view text, std::string_view origin,
                                              const std::optional<std::filesystem::path>& file,
                                              const CompileOptions& options) {
  auto schema = std::make_shared<Schema>();
  try {
    auto parsed = detail::parseSchemaDocument(
        text, origin, file ? detail::syntaxOf(*file) : detail::syntaxOf(std::string(origin)));
    schema->document.Swap(*parsed);
  } catch (const std::exception& e) {
    return CompileError{e.what()};
  }
  try {
    if (!schema->document.IsObject() && !schema->document.IsBool()) {
      throw std::runtime_error("a schema must be a JSON object or a boolean");
    }
    detail::resolveReferences(schema->document, baseUriOf(file), LocalDocuments(file, options));
    schema->uses_pattern_properties =
        detail::prepareSchema(schema->document).uses_pattern_properties;

    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    // The parser owns the builders once added.
    parser.addConstraintBuilder(detail::kPatternKeyword,
                                detail::makePatternConstraintBuilder().release());
    parser.addConstraintBuilder(detail::kFormatKeyword,
                                detail::makeFormatConstraintBuilder().release());
    parser.addConstraintBuilder(detail::kTypeKeyword,
                                detail::makeTypeConstraintBuilder().release());
    parser.addConstraintBuilder(detail::kMultipleOfKeyword,
                                detail::makeMultipleOfConstraintBuilder().release());

    // Every $ref is a pointer into this one document now, so valijson fetches nothing.
    const valijson::adapters::RapidJsonAdapter root(schema->document);
    parser.populateSchema(root, schema->compiled);
    schema->fast = detail::FastPath::build(schema->document);
  } catch (const std::exception& e) {
    return CompileError{std::string(origin) + ": schema is not supported/invalid: " + e.what()};
  } catch (...) {
    return CompileError{std::string(origin) + ": schema is not supported/invalid: unknown error"};
  }
  return SchemaPtr(std::move(schema));
}
// ---------------------------------------------------------------------------------------------
// Explaining valijson's errors

bool consume(std::string_view& text, std::string_view prefix) {
  if (text.substr(0, prefix.size()) != prefix) {
    return false;
  }
  text.remove_prefix(prefix.size());
  return true;
}

// "name'." -> "name" for descriptions that end by quoting a name.
std::string_view unquoteTail(std::string_view text, std::string_view suffix) {
  if (text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix) {
    text.remove_suffix(suffix.size());
  }
  return text;
}

// valijson formats limits with std::to_string(double): "0.000000" -> "0".
std::string trimNumber(std::string_view text) {
  std::string number(text);
  while (!number.empty() && (number.back() == '.' || number.back() == ' ')) {
    number.pop_back();
  }
  if (number.find('.') != std::string::npos) {
    while (!number.empty() && number.back() == '0') {
      number.pop_back();
    }
    if (!number.empty() && number.back() == '.') {
      number.pop_back();
    }
  }
  return number;
}

bool isWrapper(std::string_view description) {
  static constexpr std::string_view kWrappers[] = {
      "Failed to validate against child schema #",
      "Failed to validate against schema associated with property name '",
      "Failed to validate against schema associated with pattern '",
      "Failed to validate item #",
      "Failed to validate against additional properties schema",
      "Failed to validate against dependent schema.",
      "Failed to validate against a conditional schema set by if-then-else constraints.",
  };
  return std::any_of(std::begin(kWrappers), std::end(kWrappers), [&](std::string_view prefix) {
    return description.substr(0, prefix.size()) == prefix;
  });
}

bool hasType(const Value& value, std::string_view type) {
  if (type == "string") return value.IsString();
  if (type == "number") return value.IsNumber();
  if (type == "integer") return value.IsInt64() || value.IsUint64();
  if (type == "object") return value.IsObject();
  if (type == "array") return value.IsArray();
  if (type == "boolean") return value.IsBool();
  if (type == "null") return value.IsNull();
  return false;
}

// Whether `value` breaks `keyword: operand`, to pick among several schemas that apply to the
// same place (allOf, $ref, ...). Approximate on purpose: valijson has the final word.
bool violates(std::string_view keyword, const Value& operand, const Value& value) {
  if (keyword == "type") {
    if (operand.IsString()) {
      return !hasType(value, {operand.GetString(), operand.GetStringLength()});
    }
    if (operand.IsArray()) {
      return std::none_of(operand.Begin(), operand.End(), [&](const Value& type) {
        return type.IsString() && hasType(value, {type.GetString(), type.GetStringLength()});
      });
    }
    return true;
  }
  if (keyword == "enum") {
    return !operand.IsArray() ||
           std::none_of(operand.Begin(), operand.End(), [&](const Value& v) { return v == value; });
  }
  if (keyword == "const") {
    return !(operand == value);
  }
  if (operand.IsNumber() && value.IsNumber()) {
    const double limit = operand.GetDouble();
    const double number = value.GetDouble();
    if (keyword == "minimum") return number < limit;
    if (keyword == "exclusiveMinimum") return number <= limit;
    if (keyword == "maximum") return number > limit;
    if (keyword == "exclusiveMaximum") return number >= limit;
  }
  return true;
}

// Turns valijson's errors (context + English sentence) into Failures.
class Explainer {
 public:
  Explainer(const Schema& schema, const Value& document) : schema_(schema), document_(document) {}

  void explain(const valijson::ValidationResults& results, std::vector<Failure>& failures,
               size_t limit) {
    const size_t first = failures.size();
    // valijson reports "failed to validate property x" around the specific errors below it.
    // Those wrappers only add noise, unless nothing more specific was said at or below them
    // (a `false` schema, propertyNames).
    std::unordered_set<std::string> covered;
    for (const auto& error : results) {
      if (isWrapper(error.description)) {
        continue;
      }
      std::string pointer = pointerOf(error.context);
      for (size_t slash = pointer.size(); slash != std::string::npos;
           slash = slash == 0 ? std::string::npos : pointer.rfind('/', slash - 1)) {
        if (!covered.insert(pointer.substr(0, slash)).second) {
          break;  // its prefixes are there already
        }
      }
      add(failures, first, limit, std::move(pointer), error);
    }
    for (const auto& error : results) {
      if (isWrapper(error.description)) {
        std::string pointer = pointerOf(error.context);
        if (!covered.contains(pointer)) {
          add(failures, first, limit, std::move(pointer), error);
        }
      }
    }
  }

 private:
  static std::string pointerOf(const std::vector<std::string>& context) {
    std::string pointer;
    // context[0] is "<root>", then one "[name]" or "[index]" per level.
    for (size_t i = 1; i < context.size(); ++i) {
      detail::appendPointerToken(pointer, tokenOf(context[i]));
    }
    return pointer;
  }

  static std::string_view tokenOf(std::string_view element) {
    if (element.size() >= 2 && element.front() == '[' && element.back() == ']') {
      element.remove_prefix(1);
      element.remove_suffix(1);
    }
    return element;
  }

  void add(std::vector<Failure>& failures, size_t first, size_t limit, std::string pointer,
           const valijson::ValidationResults::Error& error) {
    if (failures.size() - first >= limit) {
      return;
    }
    Failure failure{std::move(pointer), message(error)};
    const bool duplicate =
        std::any_of(failures.begin() + static_cast<std::ptrdiff_t>(first), failures.end(),
                    [&](const Failure& f) {
                      return f.pointer == failure.pointer && f.message == failure.message;
                    });
    if (!duplicate) {
      failures.push_back(std::move(failure));
    }
  }

  const Value* valueAt(const std::vector<std::string>& context) const {
    const Value* value = &document_;
    for (size_t i = 1; i < context.size() && value != nullptr; ++i) {
      value = child(*value, tokenOf(context[i]));
    }
    return value;
  }

  // The operand of `keyword` in the schema that applies at `context`, preferring one the value
  // breaks. Best effort: follows properties, patternProperties, additionalProperties, items,
  // local $refs, allOf, anyOf, oneOf, if/then/else; not other documents.
  const Value* operandOf(const char* keyword, const std::vector<std::string>& context,
                         const Value* value) const {
    std::vector<const Value*> schemas;
    int budget = 256;  // $ref cycles
    collectSchemas(schema_.document, context, 1, schemas, budget);
    const Value* fallback = nullptr;
    for (const Value* schema : schemas) {
      const Value* operand = member(*schema, keyword);
      if (operand == nullptr) {  // renamed by prepareSchema?
        const std::string_view name(keyword);
        operand = name == "type"         ? member(*schema, detail::kTypeKeyword)
                  : name == "multipleOf" ? member(*schema, detail::kMultipleOfKeyword)
                                         : nullptr;
      }
      if (operand != nullptr) {
        if (value == nullptr || violates(keyword, *operand, *value)) {
          return operand;
        }
        fallback = fallback != nullptr ? fallback : operand;
      }
    }
    return fallback;
  }

  void collectSchemas(const Value& node, const std::vector<std::string>& context, size_t i,
                      std::vector<const Value*>& out, int& budget) const {
    if (!node.IsObject() || --budget < 0) {
      return;
    }
    if (const Value* ref = member(node, "$ref"); ref != nullptr && ref->IsString()) {
      // Local references only; a fragment is URI-encoded, which GenericPointer understands.
      if (ref->GetStringLength() > 0 && ref->GetString()[0] == '#') {
        const rapidjson::Pointer pointer(ref->GetString(), ref->GetStringLength());
        if (const Value* target = pointer.IsValid() ? pointer.Get(schema_.document) : nullptr) {
          collectSchemas(*target, context, i, out, budget);
        }
      }
      return;  // draft-07: siblings of $ref are ignored
    }
    if (i == context.size()) {
      out.push_back(&node);
    }
    for (const char* combinator : {"allOf", "anyOf", "oneOf"}) {
      if (const Value* list = member(node, combinator); list != nullptr && list->IsArray()) {
        for (const Value& sub : list->GetArray()) {
          collectSchemas(sub, context, i, out, budget);
        }
      }
    }
    for (const char* conditional : {"if", "then", "else"}) {
      if (const Value* sub = member(node, conditional)) {
        collectSchemas(*sub, context, i, out, budget);
      }
    }
    if (i == context.size()) {
      return;
    }
    const std::string_view token = tokenOf(context[i]);
    const Value* properties = member(node, "properties");
    const Value* named = properties != nullptr ? child(*properties, token) : nullptr;
    bool matched = named != nullptr;
    if (named != nullptr) {
      collectSchemas(*named, context, i + 1, out, budget);
    }
    if (const Value* patterns = member(node, "patternProperties");
        patterns != nullptr && patterns->IsObject()) {
      for (const auto& entry : patterns->GetObject()) {
        if (detail::patternMatches({entry.name.GetString(), entry.name.GetStringLength()}, token)) {
          matched = true;
          collectSchemas(entry.value, context, i + 1, out, budget);
        }
      }
    }
    if (const Value* additional = member(node, "additionalProperties"); !matched && additional) {
      collectSchemas(*additional, context, i + 1, out, budget);
    }
    if (const Value* items = member(node, "items")) {
      if (items->IsObject()) {
        collectSchemas(*items, context, i + 1, out, budget);
      } else if (const Value* item = child(*items, token)) {
        collectSchemas(*item, context, i + 1, out, budget);
      } else if (const Value* additional = member(node, "additionalItems")) {
        collectSchemas(*additional, context, i + 1, out, budget);
      }
    }
  }

  std::string message(const valijson::ValidationResults::Error& error) const {
    const Value* value = valueAt(error.context);
    const std::string shown = value != nullptr ? toJson(*value, kMaxValueBytes) : "the value";
    std::string_view d = error.description;

    // The operand as written in the schema, else valijson's rendering of it.
    const auto operand = [&](const char* keyword, std::string_view fallback, size_t limit) {
      const Value* found = operandOf(keyword, error.context, value);
      return found != nullptr ? toJson(*found, limit) : std::string(fallback);
    };
    const auto count = [&](const char* what) {
      if (value == nullptr) return std::string();
      const size_t n = value->IsArray()    ? value->Size()
                       : value->IsObject() ? value->MemberCount()
                                           : 0;
      return " (it has " + std::to_string(n) + " " + what + ")";
    };

    if (consume(d, detail::kPatternMismatch)) {
      return shown + " does not match pattern " + quote(d, kMaxOperandBytes);
    }
    if (consume(d, detail::kPatternTooLong)) {
      const std::string_view length = d.substr(0, d.find(':'));
      return "string too long for pattern check (" + std::string(length) + " > " +
             std::to_string(detail::kMaxPatternSubjectBytes) + " bytes)";
    }
    if (consume(d, detail::kFormatMismatch)) {
      return shown + " is not a valid " + std::string(d);
    }
    if (consume(d, "Missing required property '")) {
      return "missing required property " + quote(unquoteTail(d, "'."));
    }
    if (d == "Value type not permitted by 'type' constraint.") {
      const Value* types = operandOf("type", error.context, value);
      return types != nullptr ? shown + " is not of type " + toJson(*types, kMaxOperandBytes)
                              : shown + " has a type the schema does not allow";
    }
    if (d == "Failed to match against any enum values.") {
      return shown + " is not one of " + operand("enum", "the allowed values", kMaxOperandBytes);
    }
    if (d == "Failed to match expected value set by 'const' constraint.") {
      return shown + " is not equal to const " + operand("const", "value", kMaxOperandBytes);
    }
    if (consume(d, "Expected number greater than or equal to ")) {
      return shown + " is less than minimum " + operand("minimum", trimNumber(d), kMaxValueBytes);
    }
    if (consume(d, "Expected number greater than ")) {
      return shown + " is not greater than exclusiveMinimum " +
             operand("exclusiveMinimum", trimNumber(d), kMaxValueBytes);
    }
    if (consume(d, "Expected number less than or equal to ")) {
      return shown + " is greater than maximum " +
             operand("maximum", trimNumber(d), kMaxValueBytes);
    }
    if (consume(d, "Expected number less than ")) {
      return shown + " is not less than exclusiveMaximum " +
             operand("exclusiveMaximum", trimNumber(d), kMaxValueBytes);
    }
    if (consume(d, "String should be no fewer than ")) {
      return shown + " is shorter than minLength " + std::string(d.substr(0, d.find(' ')));
    }
    if (consume(d, "String should be no more than ")) {
      return shown + " is longer than maxLength " + std::string(d.substr(0, d.find(' ')));
    }
    if (consume(d, "Array should contain no fewer than ")) {
      return "array has fewer items than minItems " + std::string(d.substr(0, d.find(' '))) +
             count("items");
    }
    if (consume(d, "Array should contain no more than ")) {
      return "array has more items than maxItems " + std::string(d.substr(0, d.find(' '))) +
             count("items");
    }
    if (consume(d, "Object should have no fewer than ")) {
      return "object has fewer properties than minProperties " +
             std::string(d.substr(0, d.find(' '))) + count("properties");
    }
    if (consume(d, "Object should have no more than ")) {
      return "object has more properties than maxProperties " +
             std::string(d.substr(0, d.find(' '))) + count("properties");
    }
    if (consume(d,
                "Object contains a property that could not be validated using 'properties' or "
                "'additionalProperties' constraints: '")) {
      return "additional property " + quote(unquoteTail(d, "'.")) + " is not allowed";
    }
    if (consume(d, "Value should be a multiple of ")) {
      return shown + " is not a multiple of " +
             operand("multipleOf", trimNumber(d), kMaxValueBytes);
    }
    if (consume(d, "Elements at indexes #")) {
      // "0 and #2 violate uniqueness constraint."
      std::string pair(d.substr(0, d.find(" violate")));
      pair.erase(std::remove(pair.begin(), pair.end(), '#'), pair.end());
      return "items " + pair + " are equal, but uniqueItems is true";
    }
    if (consume(d, "Missing dependency '")) {
      return "missing property " + quote(unquoteTail(d, "'.")) + " (required by dependencies)";
    }
    if (consume(d, "String should be a valid ")) {
      return shown + " is not a valid " + std::string(d);
    }
    if (d == "Failed to validate against any schemas allowed by anyOf constraint.") {
      return shown + " matches none of the schemas in anyOf";
    }
    if (d == "Failed to validate against any child schemas allowed by oneOf constraint.") {
      return shown + " matches none of the schemas in oneOf";
    }
    if (d == "Failed to validate against exactly one child schema.") {
      return shown + " matches more than one schema in oneOf";
    }
    if (d == "Target should not validate against schema specified in 'not' constraint.") {
      return shown + " must not match the schema in \"not\"";
    }
    if (d == "Failed to any values against subschema in 'contains' constraint.") {
      return "array has no item that matches \"contains\"";
    }
    if (d == "Array contains more items than allowed by items constraint." ||
        consume(d, "Cannot validate item #")) {
      return "array has more items than \"items\" allows" + count("items");
    }
    // Wrappers with nothing more specific below them (e.g. a `false` schema).
    if (consume(d, "Failed to validate against schema associated with property name '")) {
      return "property " + quote(unquoteTail(d, "'.")) + " does not match its schema";
    }
    if (consume(d, "Failed to validate item #")) {
      return "item " + std::string(d.substr(0, d.find(' '))) + " does not match its schema";
    }
    if (consume(d, "Failed to validate against schema associated with pattern '")) {
      return "a property does not match the schema of patternProperties " +
             quote(unquoteTail(d, "'."), kMaxOperandBytes);
    }
    if (consume(d, "Failed to validate against additional properties schema")) {
      return "a property does not match the additionalProperties schema";
    }
    return shown + ": " + error.description;
  }

  const Schema& schema_;
  const Value& document_;
};

// valijson matches patternProperties with a backtracking std::regex on each property name; a
// long name can overflow the stack (pattern.h). Refuse such documents before valijson sees them.
struct PathFrame {
  const Value* value;
  size_t parent;
  std::string_view token;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API

std::string Failure::str() const {
  return (pointer.empty() ? std::string("at the root") : "at " + pointer) + ": " + message;
}

std::variant<SchemaPtr, CompileError> compileFile(const std::filesystem::path& file,
                                                  const CompileOptions& options) {
  try {
    std::string error;
    const auto text = readFile(file, error);
    if (!text) {
      return CompileError{file.string() + ": cannot read schema file: " + error};
    }
    return compile(*text, file.string(), file, options);
  } catch (const std::exception& e) {  // e.g. bad_alloc outside compile()'s own handler
    return CompileError{file.string() + ": " + e.what()};
  }
}

std::variant<SchemaPtr, CompileError> compileText(std::string_view text, std::string_view origin,
                                                  const CompileOptions& options) {
  try {
    return compile(text, origin, std::nullopt, options);
  } catch (const std::exception& e) {
    return CompileError{std::string(origin) + ": " + e.what()};
  }
}

struct Validator::Impl {
  // Holds valijson's regex cache (only patternProperties uses it now). Expensive to build
  // (~106 us), which is why a Validator is meant to live as long as its thread.
  valijson::Validator validator;
  // Scratch for checkPropertyNames, reused so that the hot path does not allocate.
  std::vector<PathFrame> frames;

  // False, after appending failures, when a property name is too long for patternProperties.
  bool checkPropertyNames(const Value& document, std::vector<Failure>* failures, size_t limit) {
    bool ok = true;
    size_t added = 0;
    frames.clear();
    frames.push_back({&document, 0, {}});
    // Breadth-first with `frames` as the queue: no recursion on deep documents, and each frame
    // remembers its parent so the pointer is only built for the (rare) offender.
    for (size_t i = 0; i < frames.size(); ++i) {
      const Value& value = *frames[i].value;
      const auto visit = [&](const Value& sub, std::string_view token) {
        if (sub.IsObject() || sub.IsArray()) {
          frames.push_back({&sub, i, token});
        }
      };
      if (value.IsObject()) {
        for (const auto& m : value.GetObject()) {
          const std::string_view name(m.name.GetString(), m.name.GetStringLength());
          if (name.size() > detail::kMaxPatternSubjectBytes) {
            ok = false;
            if (added < limit) {
              failures->push_back(
                  {pointerOf(i), "property name " + quote(name) + " (" +
                                     std::to_string(name.size()) +
                                     " bytes) is too long for a patternProperties "
                                     "check (> " +
                                     std::to_string(detail::kMaxPatternSubjectBytes) + ")"});
              ++added;
            }
          }
          visit(m.value, name);
        }
      } else if (value.IsArray()) {
        for (const auto& item : value.GetArray()) {
          visit(item, {});  // the index is recovered from the address when needed
        }
      }
    }
    return ok;
  }

  std::string pointerOf(size_t frame) const {
    std::vector<std::string> tokens;
    for (; frame != 0; frame = frames[frame].parent) {
      const PathFrame& f = frames[frame];
      const Value& parent = *frames[f.parent].value;
      tokens.push_back(parent.IsArray() ? std::to_string(f.value - parent.Begin())
                                        : std::string(f.token));
    }
    std::string pointer;
    for (auto it = tokens.rbegin(); it != tokens.rend(); ++it) {
      detail::appendPointerToken(pointer, *it);
    }
    return pointer;
  }
};

Validator::Validator() : impl_(std::make_unique<Impl>()) {}
Validator::~Validator() = default;

bool Validator::validate(const Schema& schema, const rapidjson::Value& document,
                         std::vector<Failure>* failures, size_t max_failures) {
  const size_t limit = failures != nullptr ? max_failures : 0;
  const size_t first = failures != nullptr ? failures->size() : 0;
  try {
    if (schema.uses_pattern_properties && !impl_->checkPropertyNames(document, failures, limit)) {
      return false;
    }
    if (schema.fast && schema.fast->valid(document)) {
      return true;
    }
    const valijson::adapters::RapidJsonAdapter adapter(document);
    // Without a results object valijson stops at the first failure and builds no messages: the
    // common, valid case pays only for this pass. Failures are then explained by a second pass.
    if (impl_->validator.validate(schema.compiled, adapter, nullptr)) {
      return true;
    }
    if (limit == 0) {
      return false;
    }
    valijson::ValidationResults results;
    impl_->validator.validate(schema.compiled, adapter, &results);
    Explainer(schema, document).explain(results, *failures, limit);
    if (failures->size() == first) {
      failures->push_back({"", "does not match the schema"});
    }
  } catch (const std::exception& e) {
    if (failures != nullptr && failures->size() - first < limit) {
      failures->push_back({"", std::string("validation error: ") + e.what()});
    }
  } catch (...) {
    if (failures != nullptr && failures->size() - first < limit) {
      failures->push_back({"", "validation error: unknown exception"});
    }
  }
  return false;
}

std::optional<bool> fastPathVerdict(const Schema& schema, const rapidjson::Value& document) {
  if (!schema.fast) return std::nullopt;
  return schema.fast->valid(document);
}

std::string explain(const std::vector<Failure>& failures) {
  std::string text;
  for (const Failure& failure : failures) {
    if (!text.empty()) {
      text += "; ";
    }
    text += failure.str();
  }
  return text;
}

}  // namespace kpipe::schema
