#include "daemon/schema/fast_path.h"

#include "daemon/schema/format.h"
#include "daemon/schema/pattern.h"
#include "daemon/schema/type_constraint.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kpipe::schema::detail {
namespace {

using rapidjson::Value;

constexpr int kMaxDepth = 64;  // deeper schemas keep valijson alone
constexpr uint32_t kNone = UINT32_MAX;

std::optional<unsigned> typeBits(const Value& operand) {
  unsigned bits = 0;
  auto add = [&](const Value& name) {
    if (!name.IsString()) return false;
    auto bit = typeBitOf({name.GetString(), name.GetStringLength()});
    if (!bit) return false;
    bits |= *bit;
    return true;
  };
  if (operand.IsString()) {
    if (!add(operand)) return std::nullopt;
  } else if (operand.IsArray()) {
    for (const Value& name : operand.GetArray()) {
      if (!add(name)) return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  return bits;
}

// Keywords the fast path does not handle: a schema with one of them has no fast path. Keys
// that are neither these nor handled are annotations (valijson ignores them too).
bool unhandledKeyword(std::string_view key) {
  static constexpr std::string_view kUnhandled[] = {
      "$ref",       "additionalItems",   "contains",      "dependencies",
      "multipleOf", "patternProperties", "propertyNames", "uniqueItems",
  };
  for (std::string_view k : kUnhandled) {
    if (key == k) return true;
  }
  return key.substr(0, 7) == "$kpipe:";  // kpipe's renamed keywords not handled below
}

// valijson's u8_strlen: code points up to the first NUL (it reads a C string).
uint64_t codePoints(const Value& string) {
  const char* s = string.GetString();
  const size_t n = string.GetStringLength();
  uint64_t count = 0;
  for (size_t i = 0; i < n && s[i] != 0; ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++count;
  }
  return count;
}

// What type_constraint.cpp's kindOf() calls the value (1.0 is an integer there); that one reads
// a valijson adapter, this one the RapidJSON value itself.
unsigned kindByValue(const Value& v) {
  if (v.IsString()) return kString;
  if (v.IsInt64()) return kInteger | kNumber;
  if (v.IsNumber()) {
    const double value = v.GetDouble();
    return std::isfinite(value) && std::trunc(value) == value ? kInteger | kNumber : kNumber;
  }
  if (v.IsObject()) return kObject;
  if (v.IsArray()) return kArray;
  if (v.IsBool()) return kBoolean;
  if (v.IsNull()) return kNull;
  return 0;
}

// valijson's own type check, for the `type`s prepare.h left to it (no "integer" without
// "number", so integers need no special reading).
unsigned kindStrict(const Value& v) {
  if (v.IsString()) return kString;
  if (v.IsNumber()) return kNumber | kInteger;
  if (v.IsObject()) return kObject;
  if (v.IsArray()) return kArray;
  if (v.IsBool()) return kBoolean;
  if (v.IsNull()) return kNull;
  return 0;
}

// An enum or const operand the fast path compares: a string, a boolean or null.
struct Literal {
  enum class Kind { Null, False, True, String } kind = Kind::Null;
  std::string text;

  static std::optional<Literal> of(const Value& v) {
    if (v.IsNull()) return Literal{Kind::Null, {}};
    if (v.IsBool()) return Literal{v.GetBool() ? Kind::True : Kind::False, {}};
    if (v.IsString()) return Literal{Kind::String, std::string(v.GetString(), v.GetStringLength())};
    return std::nullopt;
  }

  bool equals(const Value& v) const {
    switch (kind) {
      case Kind::Null:
        return v.IsNull();
      case Kind::False:
        return v.IsFalse();
      case Kind::True:
        return v.IsTrue();
      case Kind::String:
        return v.IsString() && v.GetStringLength() == text.size() &&
               std::string_view(v.GetString(), v.GetStringLength()) == text;
    }
    return false;
  }
};

std::optional<uint64_t> count(const Value& v) {
  if (v.IsUint64()) return v.GetUint64();
  return std::nullopt;
}

std::optional<double> number(const Value& v) {
  if (v.IsNumber()) return v.GetDouble();
  return std::nullopt;
}

}  // namespace

struct FastPath::Node {
  bool never = false;           // the `false` schema
  unsigned types = 0;           // allowed kinds; 0: any
  bool types_by_value = false;  // kpipe's integer-aware type (1.0 is an integer)
  std::vector<std::string> required;
  std::vector<std::pair<std::string, uint32_t>> properties;
  bool additional_forbidden = false;
  uint32_t additional = kNone;  // schema for properties not in `properties`
  std::optional<uint64_t> min_properties, max_properties;
  std::optional<uint64_t> min_length, max_length;
  std::shared_ptr<const CompiledPattern> pattern;
  FormatCheck format = nullptr;
  std::optional<double> minimum, maximum, exclusive_minimum, exclusive_maximum;
  uint32_t items = kNone;
  std::optional<uint64_t> min_items, max_items;
  std::optional<Literal> constant;
  std::optional<std::vector<Literal>> enumeration;
  std::vector<uint32_t> all_of, any_of, one_of;
  uint32_t negated = kNone;
  uint32_t if_ = kNone, then_ = kNone, else_ = kNone;
};

struct FastPath::Tree {
  std::vector<Node> nodes;

  // The node index for `schema`, or nullopt when something in it is not handled.
  std::optional<uint32_t> compile(const Value& schema, int depth) {
    if (depth > kMaxDepth) return std::nullopt;
    const auto index = static_cast<uint32_t>(nodes.size());
    nodes.emplace_back();
    if (schema.IsBool()) {
      nodes[index].never = !schema.GetBool();
      return index;
    }
    if (!schema.IsObject()) return std::nullopt;
    // Sub-schemas append nodes: fill a local node and store it at the end.
    Node node;
    auto sub = [&](const Value& s) { return compile(s, depth + 1); };
    auto subList = [&](const Value& list, std::vector<uint32_t>& out) {
      if (!list.IsArray() || list.Empty()) return false;
      for (const Value& s : list.GetArray()) {
        auto i = sub(s);
        if (!i) return false;
        out.push_back(*i);
      }
      return true;
    };
    const Value* if_schema = nullptr;
    const Value* then_schema = nullptr;
    const Value* else_schema = nullptr;
    for (const auto& member : schema.GetObject()) {
      const std::string_view key(member.name.GetString(), member.name.GetStringLength());
      const Value& v = member.value;
      if (key == "type") {
        auto bits = typeBits(v);
        if (!bits || ((*bits & kInteger) && !(*bits & kNumber))) return std::nullopt;
        node.types = *bits;
      } else if (key == kTypeKeyword) {
        auto bits = typeBits(v);
        if (!bits) return std::nullopt;
        node.types = *bits;
        node.types_by_value = true;
      } else if (key == "required") {
        if (!v.IsArray()) return std::nullopt;
        for (const Value& name : v.GetArray()) {
          if (!name.IsString()) return std::nullopt;
          node.required.emplace_back(name.GetString(), name.GetStringLength());
        }
      } else if (key == "properties") {
        if (!v.IsObject()) return std::nullopt;
        for (const auto& property : v.GetObject()) {
          auto i = sub(property.value);
          if (!i) return std::nullopt;
          node.properties.emplace_back(
              std::string(property.name.GetString(), property.name.GetStringLength()), *i);
        }
      } else if (key == "additionalProperties") {
        if (v.IsBool()) {
          node.additional_forbidden = !v.GetBool();
        } else {
          auto i = sub(v);
          if (!i) return std::nullopt;
          node.additional = *i;
        }
      } else if (key == "minProperties" || key == "maxProperties" || key == "minLength" ||
                 key == "maxLength" || key == "minItems" || key == "maxItems") {
        auto n = count(v);
        if (!n) return std::nullopt;
        (key == "minProperties"   ? node.min_properties
         : key == "maxProperties" ? node.max_properties
         : key == "minLength"     ? node.min_length
         : key == "maxLength"     ? node.max_length
         : key == "minItems"      ? node.min_items
                                  : node.max_items) = *n;
      } else if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum" ||
                 key == "exclusiveMaximum") {
        auto x = number(v);
        if (!x) return std::nullopt;
        (key == "minimum"            ? node.minimum
         : key == "maximum"          ? node.maximum
         : key == "exclusiveMinimum" ? node.exclusive_minimum
                                     : node.exclusive_maximum) = *x;
      } else if (key == kPatternKeyword) {
        if (!v.IsString()) return std::nullopt;
        try {
          node.pattern = compilePattern(std::string(v.GetString(), v.GetStringLength()));
        } catch (const std::exception&) {
          return std::nullopt;  // valijson refuses it with the reason
        }
      } else if (key == kFormatKeyword) {
        if (!v.IsString()) return std::nullopt;
        node.format = formatCheck({v.GetString(), v.GetStringLength()});  // null: annotation
      } else if (key == "items") {
        if (v.IsArray()) return std::nullopt;  // tuple form: left to valijson
        auto i = sub(v);
        if (!i) return std::nullopt;
        node.items = *i;
      } else if (key == "const") {
        node.constant = Literal::of(v);
        if (!node.constant) return std::nullopt;
      } else if (key == "enum") {
        if (!v.IsArray()) return std::nullopt;
        node.enumeration.emplace();
        for (const Value& item : v.GetArray()) {
          auto literal = Literal::of(item);
          if (!literal) return std::nullopt;
          node.enumeration->push_back(std::move(*literal));
        }
      } else if (key == "allOf") {
        if (!subList(v, node.all_of)) return std::nullopt;
      } else if (key == "anyOf") {
        if (!subList(v, node.any_of)) return std::nullopt;
      } else if (key == "oneOf") {
        if (!subList(v, node.one_of)) return std::nullopt;
      } else if (key == "not") {
        auto i = sub(v);
        if (!i) return std::nullopt;
        node.negated = *i;
      } else if (key == "if") {
        if_schema = &v;
      } else if (key == "then") {
        then_schema = &v;
      } else if (key == "else") {
        else_schema = &v;
      } else if (unhandledKeyword(key)) {
        return std::nullopt;
      }
    }
    if (if_schema != nullptr) {  // then and else without if are annotations in draft-07
      auto i = sub(*if_schema);
      if (!i) return std::nullopt;
      node.if_ = *i;
      if (then_schema != nullptr) {
        auto t = sub(*then_schema);
        if (!t) return std::nullopt;
        node.then_ = *t;
      }
      if (else_schema != nullptr) {
        auto e = sub(*else_schema);
        if (!e) return std::nullopt;
        node.else_ = *e;
      }
    }
    nodes[index] = std::move(node);
    return index;
  }

  bool valid(uint32_t index, const Value& v) const {
    const Node& n = nodes[index];
    if (n.never) return false;
    if (n.types != 0 && (n.types & (n.types_by_value ? kindByValue(v) : kindStrict(v))) == 0) {
      return false;
    }
    if (n.constant && !n.constant->equals(v)) return false;
    if (n.enumeration) {
      bool found = false;
      for (const Literal& literal : *n.enumeration) {
        if (literal.equals(v)) {
          found = true;
          break;
        }
      }
      if (!found) return false;
    }
    if (v.IsObject()) {
      if (!validObject(n, v)) return false;
    } else if (v.IsString()) {
      if (n.min_length || n.max_length) {
        const uint64_t length = codePoints(v);
        if (n.min_length && length < *n.min_length) return false;
        if (n.max_length && length > *n.max_length) return false;
      }
      const std::string_view text(v.GetString(), v.GetStringLength());
      if (n.pattern && !patternAccepts(*n.pattern, text)) return false;
      if (n.format != nullptr && !n.format(text)) return false;
    } else if (v.IsNumber()) {
      const double x = v.GetDouble();
      if (n.minimum && x < *n.minimum) return false;
      if (n.maximum && x > *n.maximum) return false;
      if (n.exclusive_minimum && x <= *n.exclusive_minimum) return false;
      if (n.exclusive_maximum && x >= *n.exclusive_maximum) return false;
    } else if (v.IsArray()) {
      const uint64_t size = v.Size();
      if (n.min_items && size < *n.min_items) return false;
      if (n.max_items && size > *n.max_items) return false;
      if (n.items != kNone) {
        for (const Value& item : v.GetArray()) {
          if (!valid(n.items, item)) return false;
        }
      }
    }
    for (uint32_t s : n.all_of) {
      if (!valid(s, v)) return false;
    }
    if (!n.any_of.empty()) {
      bool any = false;
      for (uint32_t s : n.any_of) {
        if (valid(s, v)) {
          any = true;
          break;
        }
      }
      if (!any) return false;
    }
    if (!n.one_of.empty()) {
      int matched = 0;
      for (uint32_t s : n.one_of) {
        if (valid(s, v) && ++matched > 1) return false;
      }
      if (matched != 1) return false;
    }
    if (n.negated != kNone && valid(n.negated, v)) return false;
    if (n.if_ != kNone) {
      const uint32_t branch = valid(n.if_, v) ? n.then_ : n.else_;
      if (branch != kNone && !valid(branch, v)) return false;
    }
    return true;
  }

  bool validObject(const Node& n, const Value& v) const {
    const uint64_t size = v.MemberCount();
    if (n.min_properties && size < *n.min_properties) return false;
    if (n.max_properties && size > *n.max_properties) return false;
    for (const std::string& name : n.required) {
      if (!v.HasMember(name)) return false;
    }
    if (n.properties.empty() && n.additional == kNone && !n.additional_forbidden) return true;
    for (const auto& member : v.GetObject()) {
      const std::string_view name(member.name.GetString(), member.name.GetStringLength());
      uint32_t schema = kNone;
      bool listed = false;
      for (const auto& [property, index] : n.properties) {
        if (property == name) {
          schema = index;
          listed = true;
          break;
        }
      }
      if (!listed) {
        if (n.additional_forbidden) return false;
        schema = n.additional;
      }
      if (schema != kNone && !valid(schema, member.value)) return false;
    }
    return true;
  }
};

FastPath::FastPath() = default;
FastPath::~FastPath() = default;

std::unique_ptr<FastPath> FastPath::build(const Value& schema) {
  auto tree = std::make_unique<Tree>();
  if (!tree->compile(schema, 0)) return nullptr;
  std::unique_ptr<FastPath> fast(new FastPath());
  fast->tree_ = std::move(tree);
  return fast;
}

bool FastPath::valid(const Value& document) const { return tree_->valid(0, document); }

}  // namespace kpipe::schema::detail
