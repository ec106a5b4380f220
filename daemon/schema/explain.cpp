#include "daemon/schema/explain.h"

#include "daemon/schema/document.h"
#include "daemon/schema/validator.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace kpipe::schema {
namespace {

using rapidjson::Value;

constexpr size_t kMaxShownBytes = 80;  // enum lists, const values, descriptions
constexpr int kMaxOutlineDepth = 32;   // nesting shown before "…"
// Lines of an outline. Each branch expands a local `$ref` again, so a schema whose definitions
// each use the next one twice (d0: allOf [d1, d1], d1: allOf [d2, d2], ...) has an outline of
// 2^depth lines; without a bound `kpipe explain` prints until memory runs out.
constexpr size_t kMaxOutlineLines = 10'000;
constexpr size_t kMaxExplainFailures = 1000;
// As the pipeline (pipeline/router.cpp): a document nested deeper is refused before validation,
// whose checks (valijson's uniqueItems, enum, const) recurse once per level.
constexpr int kMaxDocumentDepth = 128;

// Whether arrays and objects in `value` nest deeper than `limit`; without recursion.
bool nestsDeeperThan(const Value& value, int limit) {
  std::vector<std::pair<const Value*, int>> stack{{&value, 1}};
  while (!stack.empty()) {
    const Value* v = stack.back().first;
    const int depth = stack.back().second;
    stack.pop_back();
    const auto push = [&](const Value& child) {
      if (child.IsArray() || child.IsObject()) stack.emplace_back(&child, depth + 1);
    };
    if (v->IsArray()) {
      if (depth > limit) return true;
      for (const Value& item : v->GetArray()) push(item);
    } else if (v->IsObject()) {
      if (depth > limit) return true;
      for (const auto& m : v->GetObject()) push(m.value);
    }
  }
  return false;
}

std::string json(const Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  std::string text(buffer.GetString(), buffer.GetSize());
  if (text.size() > kMaxShownBytes) {
    size_t cut = kMaxShownBytes;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
    text += "\u2026";
  }
  return text;
}

const Value* member(const Value& schema, const char* name) {
  if (!schema.IsObject()) return nullptr;
  auto it = schema.FindMember(name);
  return it == schema.MemberEnd() ? nullptr : &it->value;
}

std::variant<std::string, std::string> readText(const std::filesystem::path& file) {
  std::ifstream stream(file, std::ios::binary);
  if (!stream) {
    return std::variant<std::string, std::string>(std::in_place_index<1>,
                                                  file.string() + ": " + std::strerror(errno));
  }
  std::string text((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  return std::variant<std::string, std::string>(std::in_place_index<0>, std::move(text));
}

class Outliner {
 public:
  explicit Outliner(const Value& root) : root_(root) {}

  void node(const Value& schema, const std::string& name, int indent) {
    if (lines_seen_ >= kMaxOutlineLines) {  // take() says where it stopped
      lines_seen_ = kMaxOutlineLines + 1;
      return;
    }
    std::string line(static_cast<size_t>(indent) * 2, ' ');
    line += name + ": ";
    if (indent > kMaxOutlineDepth) {
      emit(line + "\u2026\n");
      return;
    }
    const Value* s = &schema;
    // A local reference is shown by name and expanded in place, once per branch.
    std::string via;
    const Value* target = nullptr;
    if (const Value* ref = member(*s, "$ref"); ref != nullptr && ref->IsString()) {
      via = std::string("$ref ") + ref->GetString();
      if (ref->GetString()[0] == '#') {
        rapidjson::Pointer pointer(ref->GetString());
        target = pointer.IsValid() ? pointer.Get(root_) : nullptr;
      }
      if (target == nullptr) {
        emit(line + via + " (not expanded)\n");
        return;
      }
      if (expanding_.contains(target)) {
        emit(line + via + " (recursive)\n");
        return;
      }
      s = target;
    }
    if (target != nullptr) expanding_.insert(target);
    std::string text = summary(*s);
    if (!via.empty()) text = via + (text.empty() ? "" : " \u2192 " + text);
    emit(line + (text.empty() ? "any value" : text) + "\n");
    children(*s, indent + 1);
    if (target != nullptr) expanding_.erase(target);
  }

  std::string take() {
    if (lines_seen_ > kMaxOutlineLines) {
      lines_ += "\u2026 (outline cut at " + std::to_string(kMaxOutlineLines) +
                " lines: $refs expand to more)\n";
    }
    return std::move(lines_);
  }

 private:
  void emit(std::string line) {
    if (lines_seen_ >= kMaxOutlineLines) {
      lines_seen_ = kMaxOutlineLines + 1;
      return;
    }
    ++lines_seen_;
    lines_ += line;
  }

  static std::string summary(const Value& s) {
    if (s.IsBool()) return s.GetBool() ? "any value" : "no value (false)";
    if (!s.IsObject()) return "not a schema: " + json(s);
    std::vector<std::string> parts;
    if (const Value* type = member(s, "type")) {
      if (type->IsArray()) {
        std::string types;
        for (const auto& t : type->GetArray()) {
          types += (types.empty() ? "" : " | ") + (t.IsString() ? t.GetString() : json(t));
        }
        parts.push_back(types);
      } else {
        parts.push_back(type->IsString() ? type->GetString() : json(*type));
      }
    }
    if (const Value* e = member(s, "enum"); e != nullptr && e->IsArray()) {
      std::string values;
      for (const auto& v : e->GetArray()) values += (values.empty() ? "" : " | ") + json(v);
      parts.push_back("one of " + values);
    }
    if (const Value* c = member(s, "const")) parts.push_back("const " + json(*c));
    for (const char* keyword :
         {"format", "pattern", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum",
          "multipleOf", "minLength", "maxLength", "minItems", "maxItems", "minProperties",
          "maxProperties", "default"}) {
      if (const Value* v = member(s, keyword))
        parts.push_back(std::string(keyword) + " " + json(*v));
    }
    if (const Value* unique = member(s, "uniqueItems"); unique != nullptr && unique->IsTrue()) {
      parts.emplace_back("unique items");
    }
    if (const Value* extra = member(s, "additionalProperties");
        extra != nullptr && extra->IsBool() && !extra->GetBool()) {
      parts.emplace_back("no other properties");
    }
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
    if (const Value* d = member(s, "description"); d != nullptr && d->IsString()) {
      out += (out.empty() ? "" : " ") + std::string("\u2014 ") + json(*d);
    }
    return out;
  }

  void children(const Value& s, int indent) {
    if (!s.IsObject()) return;
    const Value* required = member(s, "required");
    auto isRequired = [&](const Value& name) {
      if (required == nullptr || !required->IsArray()) return false;
      for (const auto& r : required->GetArray()) {
        if (r == name) return true;
      }
      return false;
    };
    if (const Value* properties = member(s, "properties");
        properties != nullptr && properties->IsObject()) {
      for (const auto& p : properties->GetObject()) {
        node(p.value, std::string(p.name.GetString()) + (isRequired(p.name) ? "*" : ""), indent);
      }
    }
    // Required names the schema does not describe: still worth a line.
    if (required != nullptr && required->IsArray()) {
      const Value* properties = member(s, "properties");
      for (const auto& r : required->GetArray()) {
        if (!r.IsString()) continue;
        if (properties != nullptr && properties->IsObject() && properties->HasMember(r)) continue;
        emit(std::string(static_cast<size_t>(indent) * 2, ' ') + r.GetString() + "*: any value\n");
      }
    }
    if (const Value* patterns = member(s, "patternProperties");
        patterns != nullptr && patterns->IsObject()) {
      for (const auto& p : patterns->GetObject()) {
        node(p.value, "/" + std::string(p.name.GetString()) + "/", indent);
      }
    }
    if (const Value* extra = member(s, "additionalProperties");
        extra != nullptr && extra->IsObject()) {
      node(*extra, "(other properties)", indent);
    }
    if (const Value* items = member(s, "items")) {
      if (items->IsArray()) {
        for (rapidjson::SizeType i = 0; i < items->Size(); ++i) {
          node((*items)[i], "[" + std::to_string(i) + "]", indent);
        }
        if (const Value* extra = member(s, "additionalItems")) node(*extra, "[...]", indent);
      } else {
        node(*items, "[]", indent);
      }
    }
    if (const Value* has = member(s, "contains")) node(*has, "(contains)", indent);
    for (const char* keyword : {"allOf", "anyOf", "oneOf"}) {
      const Value* branches = member(s, keyword);
      if (branches == nullptr || !branches->IsArray()) continue;
      for (rapidjson::SizeType i = 0; i < branches->Size(); ++i) {
        node((*branches)[i], std::string(keyword) + "[" + std::to_string(i) + "]", indent);
      }
    }
    for (const char* keyword : {"not", "if", "then", "else", "propertyNames"}) {
      if (const Value* v = member(s, keyword)) node(*v, std::string("(") + keyword + ")", indent);
    }
  }

  const Value& root_;
  std::set<const Value*> expanding_;
  std::string lines_;
  size_t lines_seen_ = 0;  // lines emitted; kMaxOutlineLines + 1 once some were dropped
};

}  // namespace

std::variant<std::unique_ptr<rapidjson::Document>, std::string> loadSchemaDocument(
    const std::filesystem::path& file) {
  auto text = readText(file);
  if (text.index() == 1) return std::get<1>(text);
  return parseSchemaDocument(file, std::get<0>(text));
}

std::variant<std::unique_ptr<rapidjson::Document>, std::string> parseSchemaDocument(
    const std::filesystem::path& file, std::string_view text) {
  try {
    return detail::parseSchemaDocument(text, file.string(), detail::syntaxOf(file));
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
}

std::string outline(const Value& schema) {
  Outliner outliner(schema);
  outliner.node(schema, "(document)", 0);
  return outliner.take() + "(* = required)\n";
}

int explainCommand(const std::vector<std::string_view>& args, std::istream& in, std::ostream& out,
                   std::ostream& err) {
  if (args.empty() || args.size() > 2 || args[0].empty() || args[0] == "-") {
    err << "usage: kpipe explain SCHEMA [DOC|-]\n";
    return 2;
  }
  const std::filesystem::path schema_file(args[0]);
  auto compiled = compileFile(schema_file);
  if (const auto* error = std::get_if<CompileError>(&compiled)) {
    err << "kpipe explain: " << error->message << "\n";
    return 2;
  }
  if (args.size() == 1) {
    auto document = loadSchemaDocument(schema_file);
    if (const auto* error = std::get_if<std::string>(&document)) {
      err << "kpipe explain: " << *error << "\n";
      return 2;
    }
    out << outline(*std::get<std::unique_ptr<rapidjson::Document>>(document));
    return 0;
  }

  std::string text;
  std::string origin(args[1]);
  if (args[1] == "-") {
    origin = "standard input";
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else {
    auto read = readText(std::filesystem::path(args[1]));
    if (read.index() == 1) {
      err << "kpipe explain: " << std::get<1>(read) << "\n";
      return 2;
    }
    text = std::move(std::get<0>(read));
  }
  rapidjson::Document document;
  // As the pipeline parses messages: strict UTF-8, no recursion on deep nesting.
  document.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(
      text.data(), text.size());
  if (document.HasParseError()) {
    err << "kpipe explain: " << origin << ": not JSON at offset " << document.GetErrorOffset()
        << ": " << rapidjson::GetParseError_En(document.GetParseError()) << "\n";
    return 2;
  }
  if (nestsDeeperThan(document, kMaxDocumentDepth)) {
    err << "kpipe explain: " << origin << ": JSON nested deeper than " << kMaxDocumentDepth
        << " levels (a pipeline refuses it at the decode stage)\n";
    return 2;
  }
  Validator validator;
  std::vector<Failure> failures;
  if (validator.validate(*std::get<SchemaPtr>(compiled), document, &failures,
                         kMaxExplainFailures)) {
    out << "valid\n";
    return 0;
  }
  for (const auto& failure : failures) out << failure.str() << "\n";
  return 1;
}

}  // namespace kpipe::schema
