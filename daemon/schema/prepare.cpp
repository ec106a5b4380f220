#include "daemon/schema/prepare.h"

#include "daemon/schema/format.h"
#include "daemon/schema/multiple_of.h"
#include "daemon/schema/pattern.h"
#include "daemon/schema/resolve.h"
#include "daemon/schema/type_constraint.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kpipe::schema::detail {
namespace {

using rapidjson::Value;

// Far beyond any real schema; bounds the recursion of both passes below.
constexpr int kMaxSchemaDepth = 256;

[[noreturn]] void tooDeep() {
  throw std::runtime_error("schema nests deeper than " + std::to_string(kMaxSchemaDepth) +
                           " levels");
}

const Value* member(const Value& object, const char* name) {
  const auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

// The members of a mutable object by index: comparing RapidJSON 1.1's non-const member iterators
// is ambiguous in C++20 (clang -Wambiguous-reversed-operator).
template <typename F>
void forEachMember(Value& object, F&& f) {
  for (rapidjson::SizeType i = 0; i < object.MemberCount(); ++i) {
    f(*(object.MemberBegin() + i));
  }
}

Value::Member* findMember(Value& object, std::string_view name) {
  for (rapidjson::SizeType i = 0; i < object.MemberCount(); ++i) {
    auto& m = *(object.MemberBegin() + i);
    if (std::string_view(m.name.GetString(), m.name.GetStringLength()) == name) {
      return &m;
    }
  }
  return nullptr;
}

// The keywords kpipe adds to a schema start with this; a schema may not use them itself.
constexpr std::string_view kReservedPrefix = "$kpipe:";

// Whether `type` allows "integer" but not "number": those need kpipe's check (type_constraint.h).
bool allowsIntegerOnly(const Value& type) {
  const auto is = [](const Value& v, std::string_view name) {
    return v.IsString() && std::string_view(v.GetString(), v.GetStringLength()) == name;
  };
  if (!type.IsArray()) {
    return is(type, "integer");
  }
  bool integer = false;
  for (const Value& item : type.GetArray()) {
    if (is(item, "number")) return false;
    integer |= is(item, "integer");
  }
  return integer;
}

// Whether arrays and objects in `data` (an enum, const, default or examples value) nest deeper
// than `limit`; without recursion. The schema walk does not descend into data, but valijson copies
// enum and const values recursively when it compiles them (100,000 nested arrays overflow the
// stack) and explanations render them: such values are refused like too deep schemas.
bool dataNestsDeeperThan(const Value& data, int limit) {
  std::vector<std::pair<const Value*, int>> stack{{&data, 0}};
  while (!stack.empty()) {
    const Value* value = stack.back().first;
    const int depth = stack.back().second;
    stack.pop_back();
    if (depth > limit) return true;
    const auto push = [&](const Value& child) {
      if (child.IsArray() || child.IsObject()) stack.emplace_back(&child, depth + 1);
    };
    if (value->IsArray()) {
      for (const Value& item : value->GetArray()) push(item);
    } else if (value->IsObject()) {
      for (const auto& m : value->GetObject()) push(m.value);
    }
  }
  return false;
}

bool isCount(std::string_view key) {
  return key == "minItems" || key == "maxItems" || key == "minLength" || key == "maxLength" ||
         key == "minProperties" || key == "maxProperties";
}

// valijson refuses `"maxItems": 2.0`; draft-07 only asks for a non-negative integer, and 2.0 is
// one. Other decimals stay as written, for valijson to refuse.
void integralToUnsigned(Value& count) {
  if (count.IsDouble()) {
    const double value = count.GetDouble();
    if (value >= 0 && value <= 9007199254740992.0 && std::trunc(value) == value) {
      count.SetUint64(static_cast<uint64_t>(value));
    }
  }
}

// Renames `pattern`, `format`, integer `type`s and `multipleOf`s, fixes integral counts,
// notes `patternProperties`, and lists every schema object.
class Walker {
 public:
  void walkSchema(Value& node, int depth) {
    if (!node.IsObject()) {
      return;  // boolean schemas, and non-schema values under unknown keywords
    }
    if (depth > kMaxSchemaDepth) {
      tooDeep();
    }
    schemas.push_back(&node);
    forEachMember(node, [&](Value::Member& m) {
      const std::string_view key(m.name.GetString(), m.name.GetStringLength());
      if (key.substr(0, kReservedPrefix.size()) == kReservedPrefix && key != kDocumentsKeyword) {
        throw std::runtime_error("the keyword \"" + std::string(key) + "\" is reserved by kpipe");
      }
      if (key == "pattern") {
        m.name.SetString(rapidjson::StringRef(kPatternKeyword));
      } else if (key == "format") {
        m.name.SetString(rapidjson::StringRef(kFormatKeyword));
      } else if (key == "type" && allowsIntegerOnly(m.value)) {
        m.name.SetString(rapidjson::StringRef(kTypeKeyword));
      } else if (key == "multipleOf") {
        // Every divisor: valijson's integer one divides by 0 and -1 as told (SIGFPE) and
        // truncates decimals to integers (2.5 "is a multiple of 2"; 1e307: undefined behaviour).
        m.name.SetString(rapidjson::StringRef(kMultipleOfKeyword));
      } else if (isCount(key)) {
        integralToUnsigned(m.value);
      } else if (key == "enum" || key == "const" || key == "default" || key == "examples") {
        // Data, not schemas: an enum value {"pattern": "x"} must stay as written.
        if (dataNestsDeeperThan(m.value, kMaxSchemaDepth)) {
          throw std::runtime_error("the value of \"" + std::string(key) + "\" nests deeper than " +
                                   std::to_string(kMaxSchemaDepth) + " levels");
        }
      } else if (key == "properties" || key == "patternProperties" || key == "definitions" ||
                 key == "dependencies") {
        // Maps from names to schemas: the names are data ("pattern" may be a property name).
        uses_pattern_properties |= key == "patternProperties";
        if (m.value.IsObject()) {
          forEachMember(m.value, [&](Value::Member& entry) {
            if (key == "patternProperties") {
              // valijson compiles these itself, with std::regex, at every validation.
              checkRepetitionCounts({entry.name.GetString(), entry.name.GetStringLength()});
            }
            walkSchema(entry.value, depth + 1);
          });
        }
      } else if (m.value.IsArray()) {
        // items, allOf, ... and unknown keywords too: a $ref may point anywhere, so whatever
        // looks like a schema is treated as one.
        for (auto& item : m.value.GetArray()) {
          walkSchema(item, depth + 1);
        }
      } else {
        walkSchema(m.value, depth + 1);
      }
    });
  }

  std::vector<const Value*> schemas;
  bool uses_pattern_properties = false;
};

// Finds cycles among the subschemas that apply to the same place in the document: $ref,
// allOf/anyOf/oneOf, not, if/then/else, schema dependencies. (properties, items, ... descend
// into the document, so recursion through them ends with the document.)
class CycleFinder {
 public:
  explicit CycleFinder(const Value& root) : root_(root) {}

  void visit(const Value& node, int depth) {
    if (!node.IsObject()) {
      return;
    }
    const auto [it, inserted] = state_.try_emplace(&node, State::kOnPath);
    if (!inserted) {
      if (it->second == State::kOnPath) {
        throw std::runtime_error(
            "the schema refers to itself without descending into the document (a $ref cycle), "
            "so validation would never end");
      }
      return;
    }
    if (depth > kMaxSchemaDepth) {
      tooDeep();
    }
    if (const Value* ref = member(node, "$ref")) {
      // valijson ignores the siblings of $ref. Only pointers into this document are followed.
      if (ref->IsString() && ref->GetStringLength() > 0 && ref->GetString()[0] == '#') {
        const rapidjson::Pointer pointer(ref->GetString(), ref->GetStringLength());
        if (const Value* target = pointer.IsValid() ? pointer.Get(root_) : nullptr) {
          visit(*target, depth + 1);
        }
      }
    } else {
      for (const char* list : {"allOf", "anyOf", "oneOf"}) {
        if (const Value* items = member(node, list); items != nullptr && items->IsArray()) {
          for (const Value& item : items->GetArray()) {
            visit(item, depth + 1);
          }
        }
      }
      for (const char* single : {"not", "if", "then", "else"}) {
        if (const Value* sub = member(node, single)) {
          visit(*sub, depth + 1);
        }
      }
      if (const Value* dependencies = member(node, "dependencies");
          dependencies != nullptr && dependencies->IsObject()) {
        for (const auto& dependency : dependencies->GetObject()) {
          visit(dependency.value, depth + 1);
        }
      }
    }
    state_[&node] = State::kDone;  // not `it`: the map may have rehashed
  }

 private:
  enum class State { kOnPath, kDone };
  const Value& root_;
  std::unordered_map<const Value*, State> state_;
};

}  // namespace

PrepareResult prepareSchema(rapidjson::Document& document) {
  if (document.IsObject()) {
    if (Value::Member* ref = findMember(document, "$ref")) {
      Value all_of(rapidjson::kArrayType);
      Value reference(rapidjson::kObjectType);
      reference.AddMember("$ref", ref->value, document.GetAllocator());  // moves the string
      all_of.PushBack(reference, document.GetAllocator());
      document.RemoveMember("allOf");  // ignored next to $ref in draft-07 anyway; moves members
      ref = findMember(document, "$ref");
      ref->name.SetString(rapidjson::StringRef("allOf"));
      ref->value = all_of;
    }
  }

  Walker walker;
  walker.walkSchema(document, 0);
  CycleFinder cycles(document);
  for (const Value* schema : walker.schemas) {
    cycles.visit(*schema, 0);
  }
  return PrepareResult{walker.uses_pattern_properties};
}

}  // namespace kpipe::schema::detail
