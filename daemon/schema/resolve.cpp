#include "daemon/schema/resolve.h"

#include <algorithm>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace kpipe::schema::detail {
namespace {

using rapidjson::Value;

// Far beyond any real schema set; bounds what a chain of references can pull in.
constexpr size_t kMaxDocuments = 1000;
constexpr int kMaxDepth = 256;

// RapidJSON 1.1.0's member iterators compare only with const ones (operator==(ConstIterator)),
// which makes `it != object.MemberEnd()` on a non-const object ambiguous under C++20's reversed
// comparisons (clang -Wambiguous-reversed-operator): the end is taken from the const object.
Value::ConstMemberIterator memberEnd(const Value& object) { return object.MemberEnd(); }

struct UriParts {
  std::string_view scheme, authority, path, query, fragment;
  bool has_scheme = false, has_authority = false, has_query = false, has_fragment = false;
};

UriParts parseUri(std::string_view s) {
  UriParts u;
  const size_t colon = s.find(':');
  if (colon != std::string_view::npos && colon > 0 && colon < s.find_first_of("/?#")) {
    u.has_scheme = true;
    u.scheme = s.substr(0, colon);
    s.remove_prefix(colon + 1);
  }
  if (const size_t hash = s.find('#'); hash != std::string_view::npos) {
    u.has_fragment = true;
    u.fragment = s.substr(hash + 1);
    s = s.substr(0, hash);
  }
  if (const size_t question = s.find('?'); question != std::string_view::npos) {
    u.has_query = true;
    u.query = s.substr(question + 1);
    s = s.substr(0, question);
  }
  if (s.substr(0, 2) == "//") {
    u.has_authority = true;
    const size_t slash = s.find('/', 2);
    u.authority = s.substr(2, slash == std::string_view::npos ? std::string_view::npos : slash - 2);
    s = slash == std::string_view::npos ? std::string_view() : s.substr(slash);
  }
  u.path = s;
  return u;
}

// RFC 3986 section 5.2.4.
std::string removeDotSegments(std::string_view in) {
  std::string out;
  while (!in.empty()) {
    if (in.substr(0, 3) == "../") {
      in.remove_prefix(3);
    } else if (in.substr(0, 2) == "./") {
      in.remove_prefix(2);
    } else if (in.substr(0, 3) == "/./") {
      in.remove_prefix(2);
    } else if (in == "/.") {
      in = "/";
    } else if (in.substr(0, 4) == "/../" || in == "/..") {
      in = in.size() == 3 ? std::string_view("/") : in.substr(3);
      const size_t slash = out.rfind('/');
      out.resize(slash == std::string::npos ? 0 : slash);
    } else if (in == "." || in == "..") {
      in = {};
    } else {
      const size_t next = in.find('/', in[0] == '/' ? 1 : 0);
      out += in.substr(0, next);
      in = next == std::string_view::npos ? std::string_view() : in.substr(next);
    }
  }
  return out;
}

std::string jsonQuote(std::string_view text) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.String(text.data(), static_cast<rapidjson::SizeType>(std::min<size_t>(text.size(), 200)));
  return {buffer.GetString(), buffer.GetSize()};
}

// A JSON pointer in URI fragment form (RFC 6901 section 6): both valijson and RapidJSON decode
// %XX in a `$ref`, and RapidJSON refuses any character but unreserved ones unencoded.
std::string toFragment(std::string_view pointer) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : pointer) {
    const auto u = static_cast<unsigned char>(c);
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
    if (plain) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

// The draft-07 keywords whose values are schemas or arrays of schemas (maps of schemas are
// handled apart).
bool isSchemaKeyword(std::string_view key) {
  static constexpr std::string_view kKeywords[] = {"additionalItems",
                                                   "additionalProperties",
                                                   "allOf",
                                                   "anyOf",
                                                   "oneOf",
                                                   "not",
                                                   "contains",
                                                   "items",
                                                   "if",
                                                   "then",
                                                   "else",
                                                   "propertyNames"};
  return std::find(std::begin(kKeywords), std::end(kKeywords), key) != std::end(kKeywords);
}

std::string_view withoutFragment(std::string_view uri) { return uri.substr(0, uri.find('#')); }

class Resolver {
 public:
  Resolver(rapidjson::Document& main, const DocumentLoader& load) : main_(main), load_(load) {}

  void run(const std::string& base_uri) {
    if (main_.IsObject() && main_.HasMember(kDocumentsKeyword)) {
      throw std::runtime_error(std::string("the keyword \"") + kDocumentsKeyword +
                               "\" is reserved by kpipe");
    }
    addDocument(main_, &main_.GetAllocator(), std::string(withoutFragment(base_uri)), "");
    // refs_ grows while documents are loaded: index, not iterator.
    for (size_t i = 0; i < refs_.size(); ++i) {
      rewrite(Ref(refs_[i]));  // a copy: loading a document appends to refs_
    }
    embedDocuments();
  }

 private:
  struct Ref {
    Value* value;
    std::string base;
    rapidjson::Document::AllocatorType* allocator;
  };
  struct Loaded {
    std::unique_ptr<rapidjson::Document> document;
    std::string prefix;
  };

  void addDocument(Value& root, rapidjson::Document::AllocatorType* allocator, std::string uri,
                   std::string prefix) {
    ids_.emplace(uri, prefix);
    std::string pointer = prefix;
    index(root, uri, pointer, allocator, 0);
  }

  // Records the $ids and $refs of one schema and of everything below it.
  // `identifiable` is false below unknown keywords: what looks like a schema there may still be
  // the target of a JSON pointer, but its `$id` identifies nothing (draft-07).
  void index(Value& node, const std::string& base, std::string& pointer,
             rapidjson::Document::AllocatorType* allocator, int depth, bool identifiable = true) {
    if (!node.IsObject()) {
      return;
    }
    if (depth > kMaxDepth) {
      throw std::runtime_error("schema nests deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    std::string scope = base;
    const auto ref = node.FindMember("$ref");
    if (ref != memberEnd(node) && ref->value.IsString()) {
      refs_.push_back({&ref->value, base, allocator});  // draft-07: its sibling $id is ignored
    } else if (const auto id = node.FindMember("$id");
               identifiable && id != memberEnd(node) && id->value.IsString()) {
      const std::string resolved =
          resolveUri(base, {id->value.GetString(), id->value.GetStringLength()});
      const size_t hash = resolved.find('#');
      if (hash != std::string::npos && hash + 1 < resolved.size()) {
        ids_.emplace(resolved, pointer);  // a location-independent "#name"
        scope = resolved.substr(0, hash);
      } else {
        scope = resolved.substr(0, hash);
        ids_.emplace(scope, pointer);
      }
    }
    for (auto it = node.MemberBegin(); it != memberEnd(node); ++it) {
      const std::string_view key(it->name.GetString(), it->name.GetStringLength());
      if (key == "enum" || key == "const" || key == "default" || key == "examples") {
        continue;  // data: an "$id" in there is not an identifier
      }
      const size_t length = pointer.size();
      appendPointerToken(pointer, key);
      if (key == "properties" || key == "patternProperties" || key == "definitions" ||
          key == "dependencies") {
        if (it->value.IsObject()) {
          for (auto entry = it->value.MemberBegin(); entry != memberEnd(it->value); ++entry) {
            const size_t inner = pointer.size();
            appendPointerToken(pointer, {entry->name.GetString(), entry->name.GetStringLength()});
            index(entry->value, scope, pointer, allocator, depth + 1, identifiable);
            pointer.resize(inner);
          }
        }
      } else if (it->value.IsArray()) {
        for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
          const size_t inner = pointer.size();
          appendPointerToken(pointer, std::to_string(i));
          index(it->value[i], scope, pointer, allocator, depth + 1,
                identifiable && isSchemaKeyword(key));
          pointer.resize(inner);
        }
      } else {
        // items, not, if, ... and unknown keywords: a $ref may point anywhere.
        index(it->value, scope, pointer, allocator, depth + 1,
              identifiable && isSchemaKeyword(key));
      }
      pointer.resize(length);
    }
  }

  void rewrite(const Ref& ref) {
    const std::string written(ref.value->GetString(), ref.value->GetStringLength());
    const std::string target = resolveUri(ref.base, written);
    const size_t hash = target.find('#');
    const std::string document(withoutFragment(target));
    const std::string fragment = hash == std::string::npos ? "" : target.substr(hash + 1);
    const bool anchor = !fragment.empty() && fragment[0] != '/';
    const std::string key = anchor ? target : document;

    auto found = ids_.find(key);
    if (found == ids_.end() && !loaded_.contains(document) && !ids_.contains(document)) {
      load(document, written);
      found = ids_.find(key);
    }
    if (found == ids_.end()) {
      throw std::runtime_error("$ref to " + jsonQuote(written) + " cannot be resolved: no $id " +
                               jsonQuote(target) + " in the schema or the documents it uses");
    }
    const std::string pointer =
        "#" + toFragment(found->second) + (anchor ? std::string() : fragment);
    ref.value->SetString(pointer.data(), static_cast<rapidjson::SizeType>(pointer.size()),
                         *ref.allocator);
  }

  void load(const std::string& uri, const std::string& written) {
    if (documents_.size() >= kMaxDocuments) {
      throw std::runtime_error("$ref to " + jsonQuote(written) + ": more than " +
                               std::to_string(kMaxDocuments) + " documents referenced");
    }
    std::string why;
    auto document = load_(uri, why);
    loaded_.insert(uri);
    if (document == nullptr) {
      throw std::runtime_error("$ref to " + jsonQuote(written) + why);
    }
    std::string prefix;
    appendPointerToken(prefix, kDocumentsKeyword);
    appendPointerToken(prefix, std::to_string(documents_.size() + 1));
    documents_.push_back({std::move(document), prefix});
    Loaded& loaded = documents_.back();
    addDocument(*loaded.document, &loaded.document->GetAllocator(), uri, prefix);
  }

  // Copies each loaded document (with its references rewritten) into the main one, under the
  // name its prefix uses.
  void embedDocuments() {
    if (documents_.empty()) {
      return;
    }
    if (!main_.IsObject()) {
      throw std::runtime_error("a boolean schema cannot refer to other documents");
    }
    auto& allocator = main_.GetAllocator();
    Value documents(rapidjson::kObjectType);
    for (size_t i = 0; i < documents_.size(); ++i) {
      documents.AddMember(Value(std::to_string(i + 1), allocator),
                          Value(*documents_[i].document, allocator), allocator);
    }
    main_.AddMember(Value(kDocumentsKeyword, allocator), documents, allocator);
  }

  rapidjson::Document& main_;
  const DocumentLoader& load_;
  std::unordered_map<std::string, std::string> ids_;  // absolute URI -> JSON pointer
  std::unordered_set<std::string> loaded_;            // URIs asked of the loader
  std::vector<Loaded> documents_;
  std::vector<Ref> refs_;
};

}  // namespace

std::string resolveUri(std::string_view base, std::string_view reference) {
  const UriParts r = parseUri(reference);
  const UriParts b = parseUri(base);
  std::string scheme, authority, path, query;
  bool has_authority = false, has_query = false;
  if (r.has_scheme) {
    scheme = r.scheme;
    has_authority = r.has_authority;
    authority = r.authority;
    path = removeDotSegments(r.path);
    has_query = r.has_query;
    query = r.query;
  } else {
    scheme = b.scheme;
    if (r.has_authority) {
      has_authority = true;
      authority = r.authority;
      path = removeDotSegments(r.path);
      has_query = r.has_query;
      query = r.query;
    } else {
      has_authority = b.has_authority;
      authority = b.authority;
      if (r.path.empty()) {
        path = b.path;
        has_query = r.has_query || b.has_query;
        query = r.has_query ? r.query : b.query;
      } else {
        if (r.path[0] == '/') {
          path = removeDotSegments(r.path);
        } else if (b.has_authority && b.path.empty()) {
          path = removeDotSegments("/" + std::string(r.path));
        } else {
          const size_t slash = b.path.rfind('/');
          const std::string merged =
              (slash == std::string_view::npos ? std::string()
                                               : std::string(b.path.substr(0, slash + 1))) +
              std::string(r.path);
          // A path without a leading '/' (a URN's) has no dot segments to remove.
          path = merged.empty() || merged[0] != '/' ? merged : removeDotSegments(merged);
        }
        has_query = r.has_query;
        query = r.query;
      }
    }
  }
  std::string out;
  if (!scheme.empty()) {
    out += scheme;
    out += ':';
  }
  if (has_authority) {
    out += "//";
    out += authority;
  }
  out += path;
  if (has_query) {
    out += '?';
    out += query;
  }
  if (r.has_fragment) {
    out += '#';
    out += r.fragment;
  }
  return out;
}

void resolveReferences(rapidjson::Document& document, const std::string& base_uri,
                       const DocumentLoader& load) {
  Resolver(document, load).run(base_uri);
}

void appendPointerToken(std::string& pointer, std::string_view token) {
  pointer += '/';
  for (char c : token) {
    if (c == '~') {
      pointer += "~0";
    } else if (c == '/') {
      pointer += "~1";
    } else {
      pointer += c;
    }
  }
}

}  // namespace kpipe::schema::detail
