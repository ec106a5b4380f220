#include "daemon/schema/document.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace kpipe::schema::detail {
namespace {

constexpr unsigned kParseFlags =
    rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
// Far beyond any real schema; bounds the recursion of the YAML conversion.
constexpr int kMaxYamlDepth = 256;
// Values a YAML schema may convert to. An alias (*name) converts to a copy of what its anchor
// names, so without a bound a few hundred bytes of nested aliases ("billion laughs") expand to
// 10^9 values: memory and time without end. Without aliases a YAML text never has more values
// than bytes, so the bound only ever stops aliases.
constexpr size_t kMinYamlValueBudget = 100'000;

[[noreturn]] void parseJsonFailed(std::string_view text, const rapidjson::Document& document,
                                  std::string_view origin) {
  const size_t offset = std::min(document.GetErrorOffset(), text.size());
  size_t line = 1;
  size_t column = 1;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  throw std::runtime_error(std::string(origin) + ':' + std::to_string(line) + ':' +
                           std::to_string(column) + ": not valid JSON at offset " +
                           std::to_string(offset) + ": " +
                           rapidjson::GetParseError_En(document.GetParseError()));
}

class YamlConverter {
 public:
  YamlConverter(std::string_view origin, rapidjson::Document::AllocatorType& allocator,
                size_t value_budget)
      : origin_(origin), allocator_(allocator), value_budget_(value_budget) {}

  rapidjson::Value convert(const YAML::Node& node, int depth) {
    if (depth > kMaxYamlDepth) {
      fail(node, "nests deeper than " + std::to_string(kMaxYamlDepth) + " levels");
    }
    if (++values_ > value_budget_) {
      fail(node, "expands to more than " + std::to_string(value_budget_) +
                     " values through aliases (*name)");
    }
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return rapidjson::Value(rapidjson::kNullType);
      case YAML::NodeType::Scalar:
        return scalar(node);
      case YAML::NodeType::Sequence: {
        rapidjson::Value array(rapidjson::kArrayType);
        for (const YAML::Node& item : node) {
          array.PushBack(convert(item, depth + 1), allocator_);
        }
        return array;
      }
      case YAML::NodeType::Map: {
        rapidjson::Value object(rapidjson::kObjectType);
        for (const auto& entry : node) {
          if (!entry.first.IsScalar()) {
            fail(entry.first, "a mapping key must be a scalar (JSON has string keys only)");
          }
          const std::string& key = entry.first.Scalar();
          if (object.HasMember(key)) {
            fail(entry.first, "duplicate key \"" + key + "\"");
          }
          rapidjson::Value name(key, allocator_);
          object.AddMember(name, convert(entry.second, depth + 1), allocator_);
        }
        return object;
      }
    }
    return rapidjson::Value(rapidjson::kNullType);
  }

 private:
  rapidjson::Value scalar(const YAML::Node& node) {
    const std::string& text = node.Scalar();
    const std::string& tag = node.Tag();
    // "!" is yaml-cpp's tag for a quoted scalar; an explicit !!str too stays a string.
    if (tag == "!" || tag == "tag:yaml.org,2002:str") {
      return rapidjson::Value(text, allocator_);
    }
    if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
      return rapidjson::Value(rapidjson::kNullType);
    }
    if (text == "true" || text == "True" || text == "TRUE") return rapidjson::Value(true);
    if (text == "false" || text == "False" || text == "FALSE") return rapidjson::Value(false);
    const char* begin = text.data() + (text[0] == '+' ? 1 : 0);
    const char* end = text.data() + text.size();
    if (begin != end &&
        (std::all_of(begin + (*begin == '-'), end, [](char c) { return c >= '0' && c <= '9'; }))) {
      if (*begin == '-') {
        std::int64_t value = 0;
        if (std::from_chars(begin, end, value).ec == std::errc()) return rapidjson::Value(value);
      } else {
        std::uint64_t value = 0;
        if (std::from_chars(begin, end, value).ec == std::errc()) return rapidjson::Value(value);
      }
      return rapidjson::Value(std::strtod(text.c_str(), nullptr));  // beyond 64 bits
    }
    if (isFloat(text)) {
      return rapidjson::Value(std::strtod(text.c_str(), nullptr));
    }
    if (text == ".inf" || text == "-.inf" || text == "+.inf" || text == ".nan" || text == ".NaN" ||
        text == ".Inf" || text == "-.Inf") {
      fail(node, "\"" + text + "\" has no JSON equivalent");
    }
    return rapidjson::Value(text, allocator_);
  }

  // YAML 1.2 core schema: [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
  static bool isFloat(std::string_view s) {
    size_t i = 0;
    const auto digits = [&] {
      const size_t start = i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
      return i - start;
    };
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    const size_t whole = digits();
    size_t fraction = 0;
    if (i < s.size() && s[i] == '.') {
      ++i;
      fraction = digits();
    }
    if (whole == 0 && fraction == 0) return false;
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      ++i;
      if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
      if (digits() == 0) return false;
    }
    return i == s.size();
  }

  [[noreturn]] void fail(const YAML::Node& node, const std::string& reason) const {
    const YAML::Mark mark = node.Mark();  // 0-based
    throw std::runtime_error(std::string(origin_) + ':' + std::to_string(mark.line + 1) + ':' +
                             std::to_string(mark.column + 1) + ": " + reason);
  }

  std::string_view origin_;
  rapidjson::Document::AllocatorType& allocator_;
  size_t value_budget_;
  size_t values_ = 0;
};

}  // namespace

SchemaSyntax syntaxOf(const std::filesystem::path& file) {
  const std::string extension = file.extension().string();
  return extension == ".yaml" || extension == ".yml" ? SchemaSyntax::kYaml : SchemaSyntax::kJson;
}

std::unique_ptr<rapidjson::Document> parseSchemaDocument(std::string_view text,
                                                         std::string_view origin,
                                                         SchemaSyntax syntax) {
  auto document = std::make_unique<rapidjson::Document>();
  if (syntax == SchemaSyntax::kJson) {
    document->Parse<kParseFlags>(text.data(), text.size());
    if (document->HasParseError()) {
      parseJsonFailed(text, *document, origin);
    }
    return document;
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(std::string(origin) + ':' + std::to_string(e.mark.line + 1) + ':' +
                             std::to_string(e.mark.column + 1) + ": not valid YAML: " + e.msg);
  }
  YamlConverter converter(origin, document->GetAllocator(),
                          std::max(kMinYamlValueBudget, text.size()));
  rapidjson::Value value = converter.convert(root, 0);
  static_cast<rapidjson::Value&>(*document) = value;  // moves
  return document;
}

}  // namespace kpipe::schema::detail
