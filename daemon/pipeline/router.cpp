#include "daemon/pipeline/router.h"

#include "daemon/schema/resolve.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace kpipe::pipeline {
namespace {

constexpr size_t kParseBufferBytes = size_t{64} << 10;
constexpr size_t kStackBufferBytes = size_t{16} << 10;
constexpr size_t kMaxQuotedValue = 60;
// RFC 6901 pointers parse with rapidjson::Pointer; the loader already checked their syntax.
constexpr unsigned kParseFlags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
// ASCII text is valid UTF-8: RapidJSON's check, byte by byte inside every string, has nothing
// to find in it (3% of the io thread's time in the end-to-end benchmark, for events that are
// nearly always ASCII).
constexpr unsigned kAsciiParseFlags = rapidjson::kParseIterativeFlag;

// No byte with the high bit set. Eight bytes a step: the loop is cheaper than one string's
// byte-by-byte check.
bool isAscii(const char* text, size_t size) {
  constexpr uint64_t kHighBits = 0x8080808080808080ULL;
  uint64_t seen = 0;
  size_t i = 0;
  for (; i + sizeof(uint64_t) <= size; i += sizeof(uint64_t)) {
    uint64_t word;
    std::memcpy(&word, text + i, sizeof word);
    seen |= word;
  }
  for (; i < size; ++i) seen |= static_cast<unsigned char>(text[i]);
  return (seen & kHighBits) == 0;
}

const char* typeName(const rapidjson::Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "a boolean";
    case rapidjson::kObjectType:
      return "an object";
    case rapidjson::kArrayType:
      return "an array";
    case rapidjson::kStringType:
      return "a string";
    case rapidjson::kNumberType:
      return "a number";
  }
  return "a value";
}

std::string quote(std::string_view text) {
  std::string out = "\"";
  out.append(text.substr(0, kMaxQuotedValue));
  if (text.size() > kMaxQuotedValue) out += "…";
  out += '"';
  return out;
}

}  // namespace

namespace detail {

// True when arrays/objects in `text` nest deeper than `limit`. Skips strings; does not
// validate (the parser does).
bool nestsDeeperThan(const char* text, size_t size, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < size; ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > limit) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

// The JSON pointer of the first member name written twice in one object, or nullopt. RFC 8259
// leaves duplicates to the reader, and readers disagree (RapidJSON and valijson see the first,
// Jackson and JavaScript the last): kpipe would key, validate and route a document that another
// consumer reads differently, so it refuses it. Recursion depth is bounded by
// kMaxNestingDepth, checked before the parse.
std::optional<std::string> duplicateMember(const rapidjson::Value& value) {
  if (value.IsArray()) {
    rapidjson::SizeType index = 0;
    for (const auto& item : value.GetArray()) {
      if (auto inner = duplicateMember(item)) return "/" + std::to_string(index) + *inner;
      ++index;
    }
  } else if (value.IsObject()) {
    const auto begin = value.MemberBegin();
    const auto end = value.MemberEnd();
    auto nameOf = [](const auto& member) {
      return std::string_view(member.name.GetString(), member.name.GetStringLength());
    };
    auto at = [](std::string_view name) {
      std::string pointer;
      schema::detail::appendPointerToken(pointer, name);
      return pointer;
    };
    // Events have a handful of members per object: pairwise is cheaper than any index there;
    // a large object (a hostile one) is sorted instead, so it costs m·log m, not m².
    constexpr rapidjson::SizeType kPairwise = 16;
    if (value.MemberCount() <= kPairwise) {
      for (auto m = begin; m != end; ++m) {
        for (auto other = begin; other != m; ++other) {
          if (nameOf(*other) == nameOf(*m)) return at(nameOf(*m));
        }
      }
    } else {
      std::vector<std::string_view> names;
      names.reserve(value.MemberCount());
      for (auto m = begin; m != end; ++m) names.push_back(nameOf(*m));
      std::sort(names.begin(), names.end());
      auto twice = std::adjacent_find(names.begin(), names.end());
      if (twice != names.end()) return at(*twice);
    }
    for (auto m = begin; m != end; ++m) {
      if (auto inner = duplicateMember(m->value)) {
        return at(nameOf(*m)) + *inner;
      }
    }
  }
  return std::nullopt;
}

}  // namespace detail

const char* routeName(Route route) {
  switch (route) {
    case Route::Output:
      return "output";
    case Route::Error:
      return "error";
    case Route::Audit:
      return "audit";
    case Route::Drop:
      return "drop";
  }
  return "?";
}

void Decision::clear() {
  route = Route::Output;
  stage = {};
  reason.clear();
  error_class = error_class::kNonBlocking;
  output_key.clear();
  id.clear();
  key_hash = 0;
  has_key = false;
  reserved = false;
}

std::variant<std::unique_ptr<Router>, std::string> Router::build(const config::PipelineSpec& spec) {
  std::unique_ptr<Router> router(new Router(spec));
  auto compile =
      [&](const std::filesystem::path& file) -> std::variant<schema::SchemaPtr, std::string> {
    auto compiled = schema::compileFile(file);
    if (auto* error = std::get_if<schema::CompileError>(&compiled)) return error->message;
    return std::get<schema::SchemaPtr>(compiled);
  };
  if (spec.schema.file) {
    auto compiled = compile(*spec.schema.file);
    if (auto* error = std::get_if<std::string>(&compiled)) return *error;
    router->single_schema_ = std::get<schema::SchemaPtr>(compiled);
  }
  for (const auto& [type, file] : spec.schema.types) {
    auto compiled = compile(file);
    if (auto* error = std::get_if<std::string>(&compiled)) return *error;
    router->type_schemas_.emplace_back(type, std::get<schema::SchemaPtr>(compiled));
  }
  std::sort(router->type_schemas_.begin(), router->type_schemas_.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  auto check = [&](const Pointer* p, std::string_view what) -> std::optional<std::string> {
    if (p != nullptr && !p->pointer.IsValid())
      return std::string(what) + " pointer \"" + p->text + "\" is not a valid JSON pointer";
    return std::nullopt;
  };
  auto optional = [](const std::optional<Pointer>& p) { return p ? &*p : nullptr; };
  if (auto e = check(&router->key_, "key")) return *e;
  if (auto e = check(optional(router->output_key_), "output key")) return *e;
  if (auto e = check(optional(router->id_), "dedup id")) return *e;
  if (auto e = check(optional(router->type_field_), "schema type_field")) return *e;
  return router;
}

detail::PooledParser::PooledParser()
    : buffer_(kParseBufferBytes),
      stack_buffer_(kStackBufferBytes),
      allocator_(buffer_.data(), buffer_.size()),
      stack_allocator_(stack_buffer_.data(), stack_buffer_.size()),
      document_(&allocator_, 1024, &stack_allocator_) {}

const detail::PooledParser::Document& detail::PooledParser::parse(const char* text, size_t size) {
  // The previous document is dead: recycle its memory wholesale.
  allocator_.Clear();
  stack_allocator_.Clear();
  if (isAscii(text, size)) {
    document_.Parse<kAsciiParseFlags>(text, size);
  } else {
    document_.Parse<kParseFlags>(text, size);
  }
  return document_;
}

Router::Router(const config::PipelineSpec& spec)
    : spec_(spec), key_{spec.key_pointer, rapidjson::Pointer(spec.key_pointer.c_str())} {
  if (!spec.output.key_pointer.empty() && spec.output.key_pointer != spec.key_pointer) {
    output_key_.emplace(
        Pointer{spec.output.key_pointer, rapidjson::Pointer(spec.output.key_pointer.c_str())});
  }
  if (spec.dedup) {
    id_.emplace(
        Pointer{spec.dedup->id_pointer, rapidjson::Pointer(spec.dedup->id_pointer.c_str())});
  }
  if (!spec.schema.types.empty()) {
    type_field_.emplace(
        Pointer{spec.schema.type_field, rapidjson::Pointer(spec.schema.type_field.c_str())});
  }
}

void Router::fail(Decision& d, std::string_view stage, std::string reason) {
  d.route = Route::Error;
  d.stage = stage;
  d.reason = std::move(reason);
}

std::optional<std::string> Router::readScalar(const Pointer& p, std::string_view what,
                                              std::string& out, bool allow_number) const {
  const rapidjson::Value* v = p.pointer.Get(parser_.document());
  std::string where = "at " + (p.text.empty() ? std::string("the root") : p.text);
  if (v == nullptr) return where + ": missing " + std::string(what);
  if (v->IsString()) {
    if (v->GetStringLength() == 0) return where + ": " + std::string(what) + " is an empty string";
    out.assign(v->GetString(), v->GetStringLength());
    return std::nullopt;
  }
  if (allow_number && v->IsNumber()) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    v->Accept(writer);
    out.assign(buffer.GetString(), buffer.GetSize());
    return std::nullopt;
  }
  return where + ": " + std::string(what) + " is " + typeName(*v) + ", expected a string" +
         (allow_number ? " or a number" : "");
}

namespace detail {
const PooledParser::Document* decode(PooledParser& parser, const char* value, size_t size,
                                     size_t max_bytes, DecodeFailure& failure) {
  auto fail = [&failure](std::string_view stage, std::string reason) {
    failure.stage = stage;
    failure.reason = std::move(reason);
    return nullptr;
  };
  if (value == nullptr) return fail(stage::kDecode, "empty value (tombstone): nothing to decode");
  if (size > max_bytes) {
    return fail(stage::kSize, "value of " + std::to_string(size) +
                                  " bytes is over max_message_bytes (" + std::to_string(max_bytes) +
                                  ")");
  }
  if (size == 0) return fail(stage::kDecode, "empty value: expected a JSON object");
  // RapidJSON would skip a byte order mark; JSON on the wire must not carry one (RFC 8259 §8.1)
  // and other consumers of the same topic would choke on it, so it is flagged here.
  if (size >= 3 && std::string_view(value, 3) == "\xEF\xBB\xBF") {
    return fail(stage::kDecode, "not valid JSON at byte 0: UTF-8 byte order mark");
  }
  // No JSON text holds a NUL byte (control characters in strings must be escaped), and
  // RapidJSON's in-memory stream reads one as the end of the input: `{...}\0garbage` would pass.
  if (const void* nul = std::memchr(value, '\0', size)) {
    return fail(stage::kDecode, "not valid JSON at byte " +
                                    std::to_string(static_cast<const char*>(nul) - value) +
                                    ": NUL byte");
  }
  if (nestsDeeperThan(value, size, kMaxNestingDepth)) {
    return fail(stage::kDecode,
                "JSON nested deeper than " + std::to_string(kMaxNestingDepth) + " levels");
  }
  const PooledParser::Document& document = parser.parse(value, size);
  if (document.HasParseError()) {
    return fail(stage::kDecode, std::string("not valid JSON at byte ") +
                                    std::to_string(document.GetErrorOffset()) + ": " +
                                    rapidjson::GetParseError_En(document.GetParseError()));
  }
  if (!document.IsObject()) {
    return fail(stage::kDecode,
                std::string("top-level value is ") + typeName(document) + ", expected an object");
  }
  if (auto pointer = duplicateMember(document)) {
    return fail(stage::kDecode, "member " + *pointer +
                                    " is written twice in one object (readers disagree on "
                                    "which one counts)");
  }
  return &document;
}
}  // namespace detail

void Router::route(const char* value, size_t size, Decision& d) {
  d.clear();
  try {
    detail::DecodeFailure failure;
    const detail::PooledParser::Document* decoded =
        detail::decode(parser_, value, size, spec_.max_message_bytes, failure);
    if (decoded == nullptr) return fail(d, failure.stage, std::move(failure.reason));
    const detail::PooledParser::Document& document = *decoded;
    std::string key;
    if (auto reason = readScalar(key_, "key", key, true)) return fail(d, stage::kKey, *reason);
    d.key_hash = std::hash<std::string_view>{}(key);
    d.has_key = true;
    if (output_key_) {
      if (auto reason = readScalar(*output_key_, "output key", d.output_key, true)) {
        return fail(d, stage::kKey, *reason);
      }
    } else {
      d.output_key = std::move(key);
    }
    if (id_) {
      if (auto reason = readScalar(*id_, "message id", d.id, true))
        return fail(d, stage::kId, *reason);
    }

    const schema::Schema* schema = single_schema_.get();
    if (type_field_) {
      std::string type;
      if (auto reason = readScalar(*type_field_, "event type", type, false)) {
        return fail(d, stage::kType, *reason);
      }
      auto it =
          std::lower_bound(type_schemas_.begin(), type_schemas_.end(), type,
                           [](const auto& entry, const std::string& t) { return entry.first < t; });
      if (it != type_schemas_.end() && it->first == type) {
        schema = it->second.get();
      } else if (spec_.schema.unknown_type == config::SchemaSpec::UnknownType::Error) {
        return fail(d, stage::kType,
                    "at " + type_field_->text + ": unknown event type " + quote(type));
      }
    }
    if (schema != nullptr) {
      failures_.clear();
      if (!validator_.validate(*schema, document, &failures_)) {
        return fail(d, stage::kSchema, schema::explain(failures_));
      }
    }
  } catch (const std::exception& e) {
    // RapidJSON's checks throw (schema/rapidjson.h); the message is bad, the daemon is fine.
    return fail(d, stage::kDecode, std::string("cannot decode: ") + e.what());
  }
}

void Router::markDuplicate(Decision& d, dedup::ReserveResult seen) const {
  d.route = spec_.dedup && spec_.dedup->on_duplicate == config::DedupSpec::OnDuplicate::Drop
                ? Route::Drop
                : Route::Audit;
  d.stage = stage::kDedup;
  d.reserved = false;
  d.reason = "duplicate: message id " + quote(d.id) +
             (seen == dedup::ReserveResult::Done ? " was already processed"
                                                 : " is being processed by another copy");
}

}  // namespace kpipe::pipeline
