#pragma once
// Helpers shared by the schema tests: compile or fail loudly, parse a document, explain one.

#include "daemon/schema/validator.h"

#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kpipe::schema::testing {

// Throws (and so fails the test) when the schema does not compile.
inline SchemaPtr compileOrThrow(std::string_view json) {
  auto result = compileText(json, "test.json");
  if (const auto* error = std::get_if<CompileError>(&result)) {
    throw std::runtime_error("unexpected compile error: " + error->message);
  }
  return std::get<SchemaPtr>(std::move(result));
}

// The compile error's message, or "compiled" when there was none.
inline std::string compileErrorOf(std::string_view json) {
  auto result = compileText(json, "test.json");
  if (const auto* error = std::get_if<CompileError>(&result)) {
    return error->message;
  }
  return "compiled";
}

inline rapidjson::Document parseOrThrow(std::string_view json) {
  rapidjson::Document document;
  // Iterative, as production parses: some tests use 100,000 nested arrays.
  document.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (document.HasParseError()) {
    throw std::runtime_error("test document is not JSON: " + std::string(json));
  }
  return document;
}

// "" when valid, else explain() of the failures.
inline std::string explainOf(Validator& validator, const Schema& schema, std::string_view json,
                             size_t max_failures = 16) {
  const rapidjson::Document document = parseOrThrow(json);
  std::vector<Failure> failures;
  const bool valid = validator.validate(schema, document, &failures, max_failures);
  if (valid != failures.empty()) {
    throw std::runtime_error("validate() returned " + std::to_string(valid) + " with " +
                             std::to_string(failures.size()) + " failures");
  }
  return explain(failures);
}

inline std::string explainOf(std::string_view schema_json, std::string_view json) {
  Validator validator;
  return explainOf(validator, *compileOrThrow(schema_json), json);
}

}  // namespace kpipe::schema::testing
