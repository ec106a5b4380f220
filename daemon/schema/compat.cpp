#include "daemon/schema/compat.h"

#include "daemon/schema/pattern.h"

#include <cmath>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

namespace kpipe::schema {

std::string Incompatibility::str() const {
  return "at " + (pointer.empty() ? std::string("/") : pointer) + ": " + message;
}

namespace {

using rapidjson::Value;

constexpr size_t kMaxRenderedBytes = 100;
constexpr int kMaxDepth = 64;    // nested subschemas compared at most
constexpr int kMaxRefHops = 32;  // `$ref` -> `$ref` -> ... before giving up

// ---------------------------------------------------------------------------------------------
// JSON helpers

const Value& emptySchema() {
  static const Value empty(rapidjson::kObjectType);
  return empty;
}

std::string render(const Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  std::string text(buffer.GetString(), buffer.GetSize());
  if (text.size() > kMaxRenderedBytes) {
    size_t cut = kMaxRenderedBytes;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
    text += "\u2026";
  }
  return text;
}

std::string quoted(std::string_view text) {
  Value value(rapidjson::StringRef(text.data(), text.size()));
  return render(value);
}

std::string number(double value) {
  Value v(value);
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    v.SetInt64(static_cast<int64_t>(value));
  }
  return render(v);
}

// JSON equality as JSON Schema defines it: 1 and 1.0 are equal, member order does not matter.
bool jsonEqual(const Value& a, const Value& b) {
  if (a.IsNumber() && b.IsNumber()) return a.GetDouble() == b.GetDouble();
  if (a.GetType() != b.GetType()) return false;
  if (a.IsString()) {
    return a.GetStringLength() == b.GetStringLength() &&
           std::string_view(a.GetString(), a.GetStringLength()) ==
               std::string_view(b.GetString(), b.GetStringLength());
  }
  if (a.IsArray()) {
    if (a.Size() != b.Size()) return false;
    for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
      if (!jsonEqual(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.IsObject()) {
    if (a.MemberCount() != b.MemberCount()) return false;
    for (const auto& member : a.GetObject()) {
      auto other = b.FindMember(member.name);
      if (other == b.MemberEnd() || !jsonEqual(member.value, other->value)) return false;
    }
    return true;
  }
  return a == b;  // null, booleans
}

std::string escapePointerToken(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string child(const std::string& at, std::string_view token) {
  return at + "/" + escapePointerToken(token);
}

const Value* member(const Value& schema, const char* name) {
  if (!schema.IsObject()) return nullptr;
  auto it = schema.FindMember(name);
  return it == schema.MemberEnd() ? nullptr : &it->value;
}

std::optional<double> numberMember(const Value& schema, const char* name) {
  const Value* v = member(schema, name);
  if (v == nullptr || !v->IsNumber()) return std::nullopt;
  return v->GetDouble();
}

bool contains(const Value* array, const Value& value) {
  if (array == nullptr || !array->IsArray()) return false;
  for (const auto& item : array->GetArray()) {
    if (jsonEqual(item, value)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Types as a set: "number" is {Integer, Fraction}, since integers are numbers.

enum TypeBits : unsigned {
  kNull = 1,
  kBoolean = 2,
  kObject = 4,
  kArray = 8,
  kString = 16,
  kInteger = 32,
  kFraction = 64,  // numbers that are not integers
  kNumber = kInteger | kFraction,
  kAnyType = 127,
};

unsigned typeBitsOfName(std::string_view name) {
  if (name == "null") return kNull;
  if (name == "boolean") return kBoolean;
  if (name == "object") return kObject;
  if (name == "array") return kArray;
  if (name == "string") return kString;
  if (name == "integer") return kInteger;
  if (name == "number") return kNumber;
  return 0;
}

unsigned typeBitsOfValue(const Value& value) {
  if (value.IsNull()) return kNull;
  if (value.IsBool()) return kBoolean;
  if (value.IsObject()) return kObject;
  if (value.IsArray()) return kArray;
  if (value.IsString()) return kString;
  double d = value.GetDouble();
  return value.IsInt64() || value.IsUint64() || d == std::floor(d) ? kInteger : kFraction;
}

// The types the `type` keyword allows (all of them without it).
unsigned declaredTypes(const Value& schema) {
  const Value* type = member(schema, "type");
  if (type == nullptr) return kAnyType;
  if (type->IsString()) return typeBitsOfName(type->GetString());
  unsigned bits = 0;
  if (type->IsArray()) {
    for (const auto& t : type->GetArray()) {
      if (t.IsString()) bits |= typeBitsOfName(t.GetString());
    }
  }
  return bits;
}

std::string describeTypes(unsigned bits) {
  if (bits == kAnyType) return "any type";
  std::vector<std::string> names;
  for (auto [bit, name] :
       std::initializer_list<std::pair<unsigned, const char*>>{{kNull, "null"},
                                                               {kBoolean, "boolean"},
                                                               {kObject, "object"},
                                                               {kArray, "array"},
                                                               {kString, "string"}}) {
    if (bits & bit) names.emplace_back(name);
  }
  if ((bits & kNumber) == kNumber) {
    names.emplace_back("number");
  } else if (bits & kInteger) {
    names.emplace_back("integer");
  } else if (bits & kFraction) {
    names.emplace_back("non-integer number");
  }
  if (names.size() == 1) return quoted(names[0]);
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? "," : "") + quoted(names[i]);
  return out + "]";
}

// ---------------------------------------------------------------------------------------------

// A schema in its document: `root` is what "#..." references in it point into.
struct Located {
  const Value* schema;
  const Value* root;
  std::string base;
  std::string at;                    // its JSON pointer, for messages
  const char* which;                 // "old" or "new", for messages
  const ReferenceResolver* resolve;  // for `$ref`s to other documents
};

class Checker {
 public:
  std::vector<Incompatibility> take() { return std::move(found_); }

  void compare(Located old_side, Located new_side, int depth = 0) {
    if (depth > kMaxDepth) {
      report(new_side.at, "nested too deeply to compare: could not be proven compatible");
      return;
    }
    if (!follow(old_side) || !follow(new_side)) return;
    const Value& o = *old_side.schema;
    const Value& n = *new_side.schema;
    if (o.IsBool() && !o.GetBool()) return;  // the old schema accepted nothing
    if (n.IsBool() || !n.IsObject()) {
      if (n.IsBool() && !n.GetBool()) {
        report(new_side.at, "schema false rejects every value the old schema accepted");
      }
      return;
    }
    // A pair already under comparison is assumed compatible (recursive schemas): any difference
    // shows up on the way down that first comparison, which is still running.
    auto key = std::make_pair(&o, &n);
    if (!seen_.insert(key).second) return;

    const Value& old_schema = o.IsObject() ? o : emptySchema();
    Ctx c{old_schema, n, old_side, new_side, depth};
    const unsigned old_types = effectiveTypes(old_side, 0);
    const unsigned new_types = declaredTypes(n);
    compareType(c, old_types, new_types);
    compareEnumAndConst(c);
    const unsigned shared = old_types & new_types;
    if (shared & kNumber) compareNumbers(c, old_types);
    if (shared & kString) compareStrings(c);
    if (shared & kArray) compareArrays(c);
    if (shared & kObject) compareObjects(c);
    compareCombinators(c);
  }

 private:
  struct Ctx {
    const Value& o;
    const Value& n;
    const Located& old_side;
    const Located& new_side;
    int depth;
    std::string at(std::string_view keyword) const { return child(new_side.at, keyword); }
    Located oldSub(const Value& v, std::string_view token) const {
      return {&v,
              old_side.root,
              old_side.base,
              child(old_side.at, token),
              old_side.which,
              old_side.resolve};
    }
    Located newSub(const Value& v, std::string at) const {
      return {&v, new_side.root, new_side.base, std::move(at), new_side.which, new_side.resolve};
    }
  };

  void report(std::string pointer, std::string message) {
    found_.push_back({std::move(pointer), std::move(message)});
  }

  // Replaces a `$ref` by what it names (draft-07 ignores the keywords next to it). False, after
  // reporting why, when it cannot be followed.
  bool follow(Located& side) {
    const std::string which = side.which;
    for (int hop = 0; hop < kMaxRefHops; ++hop) {
      const Value* ref = member(*side.schema, "$ref");
      if (ref == nullptr) return true;
      if (!ref->IsString()) {
        report(side.at, "$ref in the " + which + " schema is not a string: cannot compare");
        return false;
      }
      std::string text(ref->GetString(), ref->GetStringLength());
      size_t hash = text.find('#');
      std::string uri = text.substr(0, hash);
      std::string fragment = hash == std::string::npos ? "" : text.substr(hash + 1);
      const Value* root = side.root;
      std::string base = side.base;
      std::string where;
      if (!uri.empty()) {
        if (side.resolve == nullptr || !*side.resolve) {
          report(side.at, "$ref " + quoted(text) + " in the " + which +
                              " schema names another document: cannot compare");
          return false;
        }
        ReferencedDocument document = (*side.resolve)(side.base, uri);
        if (document.root == nullptr) {
          report(side.at, "$ref " + quoted(text) + " in the " + which +
                              " schema: " + document.error + ": cannot compare");
          return false;
        }
        root = document.root;
        base = document.base;
        where = uri + "#";
      }
      if (!fragment.empty() && fragment[0] != '/') {
        report(side.at, "$ref " + quoted(text) + " in the " + which +
                            " schema names an anchor, which this check does not follow: cannot "
                            "compare");
        return false;
      }
      rapidjson::Pointer pointer(("#" + fragment).c_str());
      const Value* target = pointer.IsValid() ? pointer.Get(*root) : nullptr;
      if (target == nullptr) {
        report(side.at, "$ref " + quoted(text) + " in the " + which +
                            " schema cannot be resolved: cannot compare");
        return false;
      }
      side = Located{target, root, std::move(base), where + fragment, side.which, side.resolve};
    }
    report(side.at, "$ref chain too long: cannot compare");
    return false;
  }

  // The types the old schema can accept at all: `type`, narrowed by enum/const and allOf, and
  // by the branches of anyOf/oneOf together. Fewer types means fewer false alarms below.
  unsigned effectiveTypes(Located side, int depth) {
    if (depth > 8) return kAnyType;
    // Following references here must not report: a failure shows up in compare() anyway.
    for (int hop = 0; hop < kMaxRefHops; ++hop) {
      const Value* ref = member(*side.schema, "$ref");
      if (ref == nullptr) break;
      if (!ref->IsString() || ref->GetString()[0] != '#') return kAnyType;
      rapidjson::Pointer pointer(ref->GetString());
      const Value* target = pointer.IsValid() ? pointer.Get(*side.root) : nullptr;
      if (target == nullptr) return kAnyType;
      side.schema = target;
    }
    const Value& s = *side.schema;
    if (s.IsBool()) return s.GetBool() ? unsigned{kAnyType} : 0u;
    if (!s.IsObject()) return kAnyType;
    unsigned bits = declaredTypes(s);
    if (const Value* e = member(s, "enum"); e != nullptr && e->IsArray()) {
      unsigned values = 0;
      for (const auto& v : e->GetArray()) values |= typeBitsOfValue(v);
      bits &= values;
    }
    if (const Value* c = member(s, "const")) bits &= typeBitsOfValue(*c);
    if (const Value* all = member(s, "allOf"); all != nullptr && all->IsArray()) {
      for (const auto& branch : all->GetArray()) {
        bits &= effectiveTypes({&branch, side.root, side.base, "", side.which, side.resolve},
                               depth + 1);
      }
    }
    for (const char* keyword : {"anyOf", "oneOf"}) {
      const Value* any = member(s, keyword);
      if (any == nullptr || !any->IsArray()) continue;
      unsigned some = 0;
      for (const auto& branch : any->GetArray()) {
        some |= effectiveTypes({&branch, side.root, side.base, "", side.which, side.resolve},
                               depth + 1);
      }
      bits &= some;
    }
    return bits;
  }

  void compareType(const Ctx& c, unsigned old_types, unsigned new_types) {
    const Value* type = member(c.n, "type");
    if (type == nullptr || (old_types & ~new_types) == 0) return;
    const Value* old_type = member(c.o, "type");
    std::string before = old_type != nullptr && declaredTypes(c.o) == old_types
                             ? render(*old_type)
                             : describeTypes(old_types);
    report(c.new_side.at, "type narrowed from " + before + " to " + render(*type));
  }

  void compareEnumAndConst(const Ctx& c) {
    const Value* old_enum = member(c.o, "enum");
    const Value* old_const = member(c.o, "const");
    if (const Value* e = member(c.n, "enum"); e != nullptr && e->IsArray()) {
      if (old_const != nullptr) {
        if (!contains(e, *old_const)) report(c.at("enum"), render(*old_const) + " removed");
      } else if (old_enum != nullptr && old_enum->IsArray()) {
        for (const auto& v : old_enum->GetArray()) {
          if (!contains(e, v)) report(c.at("enum"), render(v) + " removed");
        }
      } else {
        report(c.at("enum"), "enum added: only " + render(*e) + " allowed");
      }
    }
    if (const Value* k = member(c.n, "const")) {
      if (old_const != nullptr) {
        if (!jsonEqual(*old_const, *k)) {
          report(c.at("const"), "const changed from " + render(*old_const) + " to " + render(*k));
        }
      } else if (old_enum != nullptr && old_enum->IsArray()) {
        for (const auto& v : old_enum->GetArray()) {
          if (!jsonEqual(v, *k)) report(c.at("const"), render(v) + " removed");
        }
      } else {
        report(c.at("const"), "const " + render(*k) + " added");
      }
    }
  }

  // A bound: its value and whether it is exclusive.
  struct Bound {
    double value;
    bool exclusive;
    const char* keyword;
  };

  // The tightest lower (or upper) bound of the old schema, made inclusive for integers.
  static std::optional<Bound> oldBound(const Value& o, bool lower, bool integers_only) {
    const char* inclusive = lower ? "minimum" : "maximum";
    const char* exclusive = lower ? "exclusiveMinimum" : "exclusiveMaximum";
    std::optional<Bound> best;
    auto consider = [&](Bound b) {
      if (integers_only && b.exclusive) {
        b = {lower ? std::floor(b.value) + 1 : std::ceil(b.value) - 1, false, b.keyword};
      }
      bool tighter = !best || (lower ? b.value > best->value : b.value < best->value) ||
                     (b.value == best->value && b.exclusive);
      if (tighter) best = b;
    };
    if (auto v = numberMember(o, inclusive)) consider({*v, false, inclusive});
    if (auto v = numberMember(o, exclusive)) consider({*v, true, exclusive});
    return best;
  }

  void compareBound(const Ctx& c, bool lower, bool integers_only) {
    std::optional<Bound> old_bound = oldBound(c.o, lower, integers_only);
    const char* const lower_keywords[] = {"minimum", "exclusiveMinimum"};
    const char* const upper_keywords[] = {"maximum", "exclusiveMaximum"};
    for (const char* keyword : lower ? lower_keywords : upper_keywords) {
      std::optional<double> bound = numberMember(c.n, keyword);
      if (!bound) continue;
      const bool exclusive = keyword[0] == 'e';
      bool implied = false;
      if (old_bound) {
        double o = old_bound->value;
        bool beyond = lower ? o > *bound : o < *bound;
        implied = beyond || (o == *bound && (!exclusive || old_bound->exclusive));
      }
      if (implied) continue;
      const char* verb = lower ? "raised" : "lowered";
      std::string old_keyword = old_bound ? old_bound->keyword : "";
      if (!old_bound) {
        report(c.at(keyword), std::string(keyword) + " " + number(*bound) + " added");
      } else if (old_keyword == keyword) {
        // The old value as written, not as made inclusive.
        report(c.at(keyword), std::string(verb) + " from " + number(*numberMember(c.o, keyword)) +
                                  " to " + number(*bound));
      } else {
        report(c.at(keyword), std::string(verb) + " from " + old_keyword + " " +
                                  number(*numberMember(c.o, old_keyword.c_str())) + " to " +
                                  keyword + " " + number(*bound));
      }
    }
  }

  void compareNumbers(const Ctx& c, unsigned old_types) {
    const bool integers_only = (old_types & kNumber) == kInteger;
    compareBound(c, true, integers_only);
    compareBound(c, false, integers_only);
    if (auto step = numberMember(c.n, "multipleOf"); step && *step > 0) {
      auto old_step = numberMember(c.o, "multipleOf");
      bool implied = integers_only && *step == 1;
      if (old_step) {
        double ratio = *old_step / *step;
        implied = implied || std::fabs(ratio - std::round(ratio)) < 1e-9;
      }
      if (!implied) {
        report(c.at("multipleOf"),
               old_step ? "changed from " + number(*old_step) + " to " + number(*step)
                        : "multipleOf " + number(*step) + " added");
      }
    }
  }

  // minLength/minItems/minProperties (raised) and the max* counterparts (lowered).
  void compareCount(const Ctx& c, const char* min_keyword, const char* max_keyword) {
    if (auto v = numberMember(c.n, min_keyword); v && *v > 0) {
      double old_value = numberMember(c.o, min_keyword).value_or(0);
      if (old_value < *v) {
        report(c.at(min_keyword), old_value > 0
                                      ? "raised from " + number(old_value) + " to " + number(*v)
                                      : std::string(min_keyword) + " " + number(*v) + " added");
      }
    }
    if (auto v = numberMember(c.n, max_keyword)) {
      auto old_value = numberMember(c.o, max_keyword);
      if (!old_value || *old_value > *v) {
        report(c.at(max_keyword), old_value
                                      ? "lowered from " + number(*old_value) + " to " + number(*v)
                                      : std::string(max_keyword) + " " + number(*v) + " added");
      }
    }
  }

  // A keyword whose every change counts as narrowing (pattern, format).
  void compareExact(const Ctx& c, const char* keyword, const char* why) {
    const Value* v = member(c.n, keyword);
    if (v == nullptr) return;
    const Value* old_value = member(c.o, keyword);
    if (old_value != nullptr && jsonEqual(*old_value, *v)) return;
    report(c.at(keyword), old_value != nullptr
                              ? std::string(keyword) + " changed from " + render(*old_value) +
                                    " to " + render(*v) + why
                              : std::string(keyword) + " " + render(*v) + " added");
  }

  void compareStrings(const Ctx& c) {
    compareCount(c, "minLength", "maxLength");
    compareExact(c, "pattern", " (any other pattern is treated as narrowing)");
    compareExact(c, "format", "");
  }

  // The schema the old side applies to array position `i`.
  static const Value& itemAt(const Value& schema, size_t i, std::string& token) {
    const Value* items = member(schema, "items");
    if (items == nullptr) {
      token = "items";
      return emptySchema();
    }
    if (!items->IsArray()) {
      token = "items";
      return *items;
    }
    if (i < items->Size()) {
      token = "items/" + std::to_string(i);
      return (*items)[static_cast<rapidjson::SizeType>(i)];
    }
    token = "additionalItems";
    const Value* additional = member(schema, "additionalItems");
    return additional != nullptr ? *additional : emptySchema();
  }

  void compareArrays(const Ctx& c) {
    compareCount(c, "minItems", "maxItems");
    if (const Value* unique = member(c.n, "uniqueItems"); unique != nullptr && unique->IsTrue()) {
      const Value* old_unique = member(c.o, "uniqueItems");
      if (old_unique == nullptr || !old_unique->IsTrue()) {
        report(c.at("uniqueItems"), "uniqueItems added");
      }
    }
    const Value* items = member(c.n, "items");
    const Value* old_items = member(c.o, "items");
    const size_t old_count = old_items != nullptr && old_items->IsArray() ? old_items->Size() : 0;
    std::string token;
    if (items != nullptr && !items->IsArray()) {
      // Every position: each position the old schema describes differently, then the rest.
      for (size_t i = 0; i <= old_count; ++i) {
        const Value& old_item = itemAt(c.o, i, token);
        compare(c.oldSub(old_item, token), c.newSub(*items, c.at("items")), c.depth + 1);
      }
    } else if (items != nullptr) {
      for (rapidjson::SizeType i = 0; i < items->Size(); ++i) {
        const Value& old_item = itemAt(c.o, i, token);
        compare(c.oldSub(old_item, token),
                c.newSub((*items)[i], child(c.at("items"), std::to_string(i))), c.depth + 1);
      }
      if (const Value* additional = member(c.n, "additionalItems")) {
        for (size_t i = items->Size(); i <= std::max<size_t>(old_count, items->Size()); ++i) {
          const Value& old_item = itemAt(c.o, i, token);
          compare(c.oldSub(old_item, token), c.newSub(*additional, c.at("additionalItems")),
                  c.depth + 1);
        }
      }
    }
    if (const Value* has = member(c.n, "contains")) {
      const Value* old_has = member(c.o, "contains");
      if (old_has == nullptr) {
        if (!(has->IsBool() && has->GetBool()) && !(has->IsObject() && has->MemberCount() == 0)) {
          report(c.at("contains"), "contains added: arrays without such an item are rejected");
        }
      } else if (!proves(c.oldSub(*old_has, "contains"), c.newSub(*has, c.at("contains")),
                         c.depth)) {
        report(c.at("contains"), "contains changed: could not be proven compatible");
      }
    }
  }

  // The schemas the new side applies to property `name`, each with its pointer: its own, or
  // those of the matching patternProperties, or additionalProperties.
  static std::vector<std::pair<const Value*, std::string>> newPropertySchemas(
      const Ctx& c, const std::string& name, bool& named) {
    const Value* properties = member(c.n, "properties");
    named = false;
    if (properties != nullptr && properties->IsObject()) {
      if (auto it = properties->FindMember(name.c_str()); it != properties->MemberEnd()) {
        named = true;
        return {{&it->value, child(c.at("properties"), name)}};
      }
    }
    std::vector<std::pair<const Value*, std::string>> out;
    const Value* patterns = member(c.n, "patternProperties");
    if (patterns != nullptr && patterns->IsObject()) {
      for (const auto& p : patterns->GetObject()) {
        if (detail::patternMatches(p.name.GetString(), name)) {
          out.emplace_back(&p.value, child(c.at("patternProperties"), p.name.GetString()));
        }
      }
    }
    if (out.empty()) {
      const Value* additional = member(c.n, "additionalProperties");
      out.emplace_back(additional != nullptr ? additional : &emptySchema(),
                       c.at("additionalProperties"));
    }
    return out;
  }

  // The schema the old side applies to property `name`; `open` when that is only the default.
  // One matching pattern is enough: the old side as less constrained is the conservative side.
  static const Value& oldPropertySchema(const Ctx& c, const std::string& name, std::string& token,
                                        bool& open) {
    open = false;
    const Value* properties = member(c.o, "properties");
    if (properties != nullptr && properties->IsObject()) {
      if (auto it = properties->FindMember(name.c_str()); it != properties->MemberEnd()) {
        token = "properties/" + escapePointerToken(name);
        return it->value;
      }
    }
    const Value* patterns = member(c.o, "patternProperties");
    if (patterns != nullptr && patterns->IsObject()) {
      for (const auto& p : patterns->GetObject()) {
        if (detail::patternMatches(p.name.GetString(), name)) {
          token = "patternProperties/" + escapePointerToken(p.name.GetString());
          return p.value;
        }
      }
    }
    token = "additionalProperties";
    const Value* additional = member(c.o, "additionalProperties");
    open = additional == nullptr || (additional->IsBool() && additional->GetBool());
    return additional != nullptr ? *additional : emptySchema();
  }

  static bool isFalse(const Value* v) { return v != nullptr && v->IsBool() && !v->GetBool(); }

  void compareObjects(const Ctx& c) {
    compareCount(c, "minProperties", "maxProperties");
    if (const Value* required = member(c.n, "required");
        required != nullptr && required->IsArray()) {
      const Value* old_required = member(c.o, "required");
      for (const auto& name : required->GetArray()) {
        if (!contains(old_required, name)) {
          report(c.at("required"), render(name) + " is newly required");
        }
      }
    }
    // Each property either side names.
    std::set<std::string> names;
    for (const Value* side : {&c.o, &c.n}) {
      const Value* properties = member(*side, "properties");
      if (properties == nullptr || !properties->IsObject()) continue;
      for (const auto& p : properties->GetObject()) names.insert(p.name.GetString());
    }
    const Value* new_additional = member(c.n, "additionalProperties");
    const Value* old_additional = member(c.o, "additionalProperties");
    for (const std::string& name : names) {
      std::string token;
      bool open = false;
      const Value& old_schema = oldPropertySchema(c, name, token, open);
      bool named = false;
      auto new_schemas = newPropertySchemas(c, name, named);
      if (open && named) continue;  // a new property: growth (see compat.h)
      for (const auto& [schema, at] : new_schemas) {
        if (!named && isFalse(schema)) {
          // A name the old schema listed; other names are covered by additionalProperties below.
          if (token.starts_with("properties/") && !isFalse(&old_schema)) {
            report(child(c.at("properties"), name), "property removed from a closed schema");
          }
          continue;
        }
        compare(c.oldSub(old_schema, token), c.newSub(*schema, at), c.depth + 1);
      }
    }
    if (new_additional != nullptr) {
      if (isFalse(new_additional) && (old_additional == nullptr || old_additional->IsTrue())) {
        report(c.new_side.at, "additionalProperties false closes an open schema");
      } else if (!isFalse(new_additional)) {
        compare(c.oldSub(old_additional != nullptr ? *old_additional : emptySchema(),
                         "additionalProperties"),
                c.newSub(*new_additional, c.at("additionalProperties")), c.depth + 1);
      } else if (!isFalse(old_additional)) {
        report(c.at("additionalProperties"),
               "additionalProperties false rejects properties the old schema allowed");
      }
    }
    comparePatternProperties(c);
    compareDependencies(c);
    if (const Value* names_schema = member(c.n, "propertyNames")) {
      const Value* old_names = member(c.o, "propertyNames");
      compare(c.oldSub(old_names != nullptr ? *old_names : emptySchema(), "propertyNames"),
              c.newSub(*names_schema, c.at("propertyNames")), c.depth + 1);
    }
  }

  void comparePatternProperties(const Ctx& c) {
    const Value* patterns = member(c.n, "patternProperties");
    if (patterns == nullptr || !patterns->IsObject()) return;
    const Value* old_patterns = member(c.o, "patternProperties");
    const bool old_closed = isFalse(member(c.o, "additionalProperties"));
    for (const auto& p : patterns->GetObject()) {
      std::string at = child(c.at("patternProperties"), p.name.GetString());
      if (old_patterns != nullptr && old_patterns->IsObject()) {
        if (auto it = old_patterns->FindMember(p.name); it != old_patterns->MemberEnd()) {
          compare(
              c.oldSub(it->value, "patternProperties/" + escapePointerToken(p.name.GetString())),
              c.newSub(p.value, at), c.depth + 1);
          continue;
        }
      }
      // Names the old schema closed off cannot have carried data; the names it listed were
      // compared one by one above.
      const bool old_had_patterns =
          old_patterns != nullptr && old_patterns->IsObject() && old_patterns->MemberCount() > 0;
      if (old_closed && !old_had_patterns) continue;
      if (proves(c.oldSub(member(c.o, "additionalProperties") != nullptr
                              ? *member(c.o, "additionalProperties")
                              : emptySchema(),
                          "additionalProperties"),
                 c.newSub(p.value, at), c.depth) &&
          !old_had_patterns) {
        continue;
      }
      report(at, "patternProperties " + quoted(p.name.GetString()) +
                     " added: could not be proven compatible");
    }
  }

  void compareDependencies(const Ctx& c) {
    const Value* dependencies = member(c.n, "dependencies");
    if (dependencies == nullptr || !dependencies->IsObject()) return;
    const Value* old_dependencies = member(c.o, "dependencies");
    const Value* old_required = member(c.o, "required");
    for (const auto& d : dependencies->GetObject()) {
      const Value* old_d = nullptr;
      if (old_dependencies != nullptr && old_dependencies->IsObject()) {
        if (auto it = old_dependencies->FindMember(d.name); it != old_dependencies->MemberEnd()) {
          old_d = &it->value;
        }
      }
      std::string at = child(c.at("dependencies"), d.name.GetString());
      if (d.value.IsArray()) {
        for (const auto& name : d.value.GetArray()) {
          bool implied = contains(old_required, name) ||
                         (old_d != nullptr && old_d->IsArray() && contains(old_d, name));
          if (!implied) {
            report(at, render(name) + " is newly required when " + quoted(d.name.GetString()) +
                           " is present");
          }
        }
      } else {
        const Value& old_schema = old_d != nullptr && !old_d->IsArray() ? *old_d : emptySchema();
        compare(c.oldSub(old_schema, "dependencies/" + escapePointerToken(d.name.GetString())),
                c.newSub(d.value, at), c.depth + 1);
      }
    }
  }

  void compareCombinators(const Ctx& c) {
    if (const Value* all = member(c.n, "allOf"); all != nullptr && all->IsArray()) {
      // The old schema implies each of its own allOf branches: pair them by position.
      const Value* old_all = member(c.o, "allOf");
      for (rapidjson::SizeType i = 0; i < all->Size(); ++i) {
        const bool paired = old_all != nullptr && old_all->IsArray() && i < old_all->Size();
        std::string at = child(c.at("allOf"), std::to_string(i));
        if (paired) {
          compare(c.oldSub((*old_all)[i], "allOf/" + std::to_string(i)), c.newSub((*all)[i], at),
                  c.depth + 1);
        } else {
          // A new branch must follow from the old schema as a whole.
          compare(c.old_side, c.newSub((*all)[i], at), c.depth + 1);
        }
      }
    }
    if (const Value* any = member(c.n, "anyOf"); any != nullptr && any->IsArray()) {
      const Value* old_any = member(c.o, "anyOf");
      if (old_any == nullptr || !jsonEqual(*old_any, *any)) {
        // Each old branch (or the old schema itself) must fit in some new branch.
        std::vector<Located> olds;
        if (old_any != nullptr && old_any->IsArray()) {
          for (rapidjson::SizeType i = 0; i < old_any->Size(); ++i) {
            olds.push_back(c.oldSub((*old_any)[i], "anyOf/" + std::to_string(i)));
          }
        } else {
          olds.push_back(c.old_side);
        }
        bool all_fit = true;
        for (const Located& o : olds) {
          bool fits = false;
          for (rapidjson::SizeType j = 0; j < any->Size() && !fits; ++j) {
            fits = proves(o, c.newSub((*any)[j], child(c.at("anyOf"), std::to_string(j))), c.depth);
          }
          all_fit = all_fit && fits;
        }
        if (!all_fit) {
          report(c.at("anyOf"), std::string("anyOf ") + (old_any ? "changed" : "added") +
                                    ": could not be proven compatible");
        }
      }
    }
    if (const Value* one = member(c.n, "oneOf")) {
      // Exactly one: a wider branch can make a document match two. Only the same list is safe.
      const Value* old_one = member(c.o, "oneOf");
      if (old_one == nullptr || !jsonEqual(*old_one, *one)) {
        report(c.at("oneOf"), std::string("oneOf ") + (old_one ? "changed" : "added") +
                                  ": could not be proven compatible");
      }
    }
    if (const Value* no = member(c.n, "not")) {
      // What the new schema forbids must already have been forbidden.
      const Value* old_no = member(c.o, "not");
      bool fine = old_no != nullptr &&
                  (jsonEqual(*old_no, *no) ||
                   proves(c.newSub(*no, c.at("not")), c.oldSub(*old_no, "not"), c.depth));
      if (!fine) {
        report(c.at("not"), std::string("not ") + (old_no ? "changed" : "added") +
                                ": could not be proven compatible");
      }
    }
    if (const Value* condition = member(c.n, "if")) {
      const Value* old_condition = member(c.o, "if");
      if (old_condition == nullptr || !jsonEqual(*old_condition, *condition)) {
        if (member(c.n, "then") != nullptr || member(c.n, "else") != nullptr) {
          report(c.at("if"), std::string("if/then/else ") + (old_condition ? "changed" : "added") +
                                 ": could not be proven compatible");
        }
      } else {
        for (const char* branch : {"then", "else"}) {
          const Value* v = member(c.n, branch);
          if (v == nullptr) continue;
          const Value* old_v = member(c.o, branch);
          compare(c.oldSub(old_v != nullptr ? *old_v : emptySchema(), branch),
                  c.newSub(*v, c.at(branch)), c.depth + 1);
        }
      }
    }
  }

  // Whether old ⊆ new can be shown, without reporting.
  bool proves(const Located& old_side, const Located& new_side, int depth) {
    // A fresh checker: pairs this one has seen may have failed, and must not count as proven.
    Checker trial;
    trial.compare(old_side, new_side, depth + 1);
    return trial.found_.empty();
  }

  std::vector<Incompatibility> found_;
  std::set<std::pair<const Value*, const Value*>> seen_;
};

}  // namespace

std::vector<Incompatibility> checkGrowthOnly(const Value& old_schema, const Value& new_schema,
                                             const CompatOptions& options) {
  Checker checker;
  checker.compare({&old_schema, &old_schema, options.old_base, "", "old", &options.resolve_old},
                  {&new_schema, &new_schema, options.new_base, "", "new", &options.resolve_new});
  return checker.take();
}

}  // namespace kpipe::schema
