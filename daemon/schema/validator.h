#pragma once
// JSON Schema (draft-07) validation with explanations a person can act on.
//
// A Schema is compiled once from a file and is immutable afterwards. Validation needs a
// Validator, which owns scratch state and caches (valijson's regex cache): one per thread,
// reused for every message; not thread-safe.
//
// Failures name the JSON pointer, the offending value (truncated) and the rule:
//   at /msg_id: "abc" does not match pattern "^[0-9a-f-]{36}$"
//   at /amount: -3 is less than minimum 0

#include "daemon/schema/rapidjson.h"

#include <filesystem>
#include <memory>
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

// Loads and compiles a schema file (JSON). Never throws; never touches the network.
std::variant<SchemaPtr, CompileError> compileFile(const std::filesystem::path& file);
// Same from text; `origin` names it in messages.
std::variant<SchemaPtr, CompileError> compileText(std::string_view json, std::string_view origin);

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

// Joins failures into one line: "at /a: ...; at /b: ...".
std::string explain(const std::vector<Failure>& failures);

}  // namespace kpipe::schema
