#pragma once
// JSON Schema (draft-07) validation with explanations a person can act on.
//
// A Schema is compiled once from a file and is immutable afterwards. Validation needs a
// Validator, which owns scratch state and caches (valijson's regex cache): one per thread,
// reused for every message; not thread-safe.
//
// Failures name the JSON pointer, the offending value (truncated) and the rule:
//   at /msg_id: "abc" is not a valid uuid
//   at /amount: -3 is less than minimum 0

#include "daemon/schema/rapidjson.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kpipe::schema {

struct Failure {
  std::string pointer;      // JSON pointer into the document ("" = the root)
  std::string message;      // the rule and the offending value, without the pointer
  std::string str() const;  // "at /pointer: message" ("at the root: ..." for "")
};

class Schema;
using SchemaPtr = std::shared_ptr<const Schema>;

struct CompileError {
  std::string message;  // names the file and what is wrong with the schema
};

// A URI prefix served from a local directory: a `$ref` to "<uri_prefix>a/b.json" reads
// "<directory>/a/b.json". Lets schemas refer to a published URL without kpipe fetching it.
struct LocalMirror {
  std::string uri_prefix;  // e.g. "https://schemas.example.com/"
  std::filesystem::path directory;
};

struct CompileOptions {
  std::vector<LocalMirror> mirrors;
};

// Loads and compiles a schema file: JSON, or YAML for .yaml/.yml. `$ref`s resolve to `$id`s in
// the schema and the documents it uses, to files relative to it, and to `options.mirrors`.
// Never throws; never touches the network.
std::variant<SchemaPtr, CompileError> compileFile(const std::filesystem::path& file,
                                                  const CompileOptions& options = {});
// Same from text (YAML when `origin` ends in .yaml/.yml); `origin` names it in messages. With no
// file, relative `$ref`s resolve only to `$id`s and mirrors.
std::variant<SchemaPtr, CompileError> compileText(std::string_view text, std::string_view origin,
                                                  const CompileOptions& options = {});

class Validator {
 public:
  Validator();
  ~Validator();
  Validator(const Validator&) = delete;
  Validator& operator=(const Validator&) = delete;

  // True when `document` is valid. Otherwise appends every failure (up to `max_failures`) to
  // `failures` when it is not null. Never throws.
  bool validate(const Schema& schema, const rapidjson::Value& document,
                std::vector<Failure>* failures, size_t max_failures = 16);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The fast path's answer alone (fast_path.h), or nullopt when the schema has none: for tests
// that compare it with valijson's.
std::optional<bool> fastPathVerdict(const Schema& schema, const rapidjson::Value& document);

// Joins failures into one line: "at /a: ...; at /b: ...".
std::string explain(const std::vector<Failure>& failures);

}  // namespace kpipe::schema
