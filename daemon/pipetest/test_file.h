#pragma once
// Test files for `kpipe test`: what a file says (cases: input messages, expected outcome) once
// read and checked. parseTestFile() reports every problem of a file at once, each with
// file:line:column and the key path, through the config reader (config/reader.h), so test files
// and pipeline files complain alike.
//
// Pure function of the file (and the files its cases name with value_file); thread-compatible.

#include "daemon/config/loader.h"
#include "daemon/pipeline/router.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kpipe::pipetest {

using Headers = std::vector<std::pair<std::string, std::string>>;

// One input record, as a producer would write it.
struct Message {
  std::optional<std::string> key;    // nullopt: no key
  std::optional<std::string> value;  // nullopt: a tombstone
  Headers headers;                   // in file order
};

// What must come out of the last input message of a case. Unset fields are not checked.
struct Expectation {
  std::optional<pipeline::Route> route;
  std::optional<std::string> key;
  bool expect_no_key = false;  // `key: null`: the record is written without a key
  std::optional<int32_t> partition;
  std::optional<std::string> stage;         // error/audit/drop stage: "schema", "dedup", ...
  std::optional<std::string> reason;        // substring of the reason
  std::optional<std::string> reason_regex;  // ECMAScript regex, searched in the reason
  Headers headers;                          // must be on the written record, with these values
};

struct Case {
  std::string name;
  config::SourceLocation where;       // the case's entry in the file
  std::vector<Message> input;         // at least one; routed in order through one dedup store
  std::optional<Expectation> expect;  // nullopt only when reading for --record
};

struct TestFile {
  std::filesystem::path path;
  std::string display;   // as messages name it
  std::string pipeline;  // "" when the file does not say: see runner.h for the lookup
  config::SourceLocation pipeline_where;
  int32_t partitions = 4;     // partition count of the output topic, for expected partitions
  bool shared_store = false;  // true: all cases share one dedup store, in file order
  std::vector<Case> cases;
  YAML::Node root;  // the parsed document, for --record
};

struct ParseResult {
  std::optional<TestFile> file;             // set only when errors is empty
  std::vector<config::ConfigError> errors;  // in file order
  bool ok() const { return file.has_value(); }
};

struct ParseOptions {
  // --record writes the expectations, so a case may come without one.
  bool expect_optional = false;
};

// Reads and checks the test file at `path`; `display` names it in messages ("" = path as given).
ParseResult parseTestFile(const std::filesystem::path& path, const ParseOptions& options = {},
                          std::string display = "");

// Converts a YAML value to compact JSON, keeping map order. Quoted scalars are strings; plain
// ones resolve as YAML 1.2 core (null, true/false, numbers) or else strings. `error` says what
// JSON cannot hold (.inf, .nan, a map as a key, cycles through aliases).
struct JsonResult {
  std::string json;
  std::optional<std::string> error;
};
JsonResult yamlToJson(const YAML::Node& node);

// How a plain (unquoted) YAML scalar resolves: "null", "bool", "int", "float" or "str".
// The record writer quotes a string whose plain form would resolve otherwise.
std::string_view plainScalarType(std::string_view text);

}  // namespace kpipe::pipetest
