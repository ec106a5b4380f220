// libFuzzer target: JSON Schema compilation, validation and explanation (daemon/schema).
//
// Input: SCHEMA NUL DOCUMENT. SCHEMA is JSON, or YAML when it starts with "---" (as a .yaml
// schema file); without a NUL the schema text is validated against itself. The schema is
// written to a scratch file next to a copy of the demo schemas (so relative `$ref`s such as
// "schemas/user-event.json#/properties/ts" resolve) and compiled with compileFile, as the
// daemon compiles a pipeline's schema. Then, as `kpipe explain SCHEMA DOC` and the pipeline do:
// the document is parsed (strict UTF-8, iterative), validated with a Validator reused across
// inputs, its failures rendered with explain(); and as `kpipe explain SCHEMA`: the outline.
//
// Documents nested deeper than 128 levels are skipped: the pipeline and `kpipe explain` refuse
// them before validation (valijson's checks recurse once per level). So are property names over
// 8 bytes under a schema with patternProperties: valijson's backtracking regex there is the
// known gap of pattern.h, exponential in the name's length.
//
// Invariants: nothing throws; validate() agrees with itself with and without failures asked
// for, and returns failures exactly when the document is invalid.

#include "daemon/schema/explain.h"
#include "daemon/schema/rapidjson.h"
#include "daemon/schema/validator.h"

#include "tests/fuzz/fuzz_util.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace kpipe;

bool nestsDeeperThan(const rapidjson::Value& value, int limit) {
  std::vector<std::pair<const rapidjson::Value*, int>> stack{{&value, 1}};
  while (!stack.empty()) {
    const auto [v, depth] = stack.back();
    stack.pop_back();
    if (!v->IsArray() && !v->IsObject()) continue;
    if (depth > limit) return true;
    if (v->IsArray()) {
      for (const auto& item : v->GetArray()) stack.emplace_back(&item, depth + 1);
    } else {
      for (const auto& m : v->GetObject()) stack.emplace_back(&m.value, depth + 1);
    }
  }
  return false;
}

constexpr size_t kMaxNameBytesUnderPatterns = 8;

// Calls `visit` on every array and object in `value`, without recursion.
template <typename F>
void forEachContainer(const rapidjson::Value& value, F&& visit) {
  std::vector<const rapidjson::Value*> stack{&value};
  while (!stack.empty()) {
    const rapidjson::Value* v = stack.back();
    stack.pop_back();
    visit(*v);
    if (v->IsArray()) {
      for (const auto& item : v->GetArray()) {
        if (item.IsArray() || item.IsObject()) stack.push_back(&item);
      }
    } else if (v->IsObject()) {
      for (const auto& m : v->GetObject()) {
        if (m.value.IsArray() || m.value.IsObject()) stack.push_back(&m.value);
      }
    }
  }
}

bool hasMemberNamed(const rapidjson::Value& value, std::string_view name) {
  bool found = false;
  forEachContainer(value, [&](const rapidjson::Value& v) {
    if (v.IsObject() && v.HasMember(rapidjson::StringRef(name.data(), name.size()))) found = true;
  });
  return found;
}

// Whether valijson would match a property name longer than kMaxNameBytesUnderPatterns against
// patternProperties: names over 4096 bytes make the validator refuse the document first.
bool hasNamesForSlowPatterns(const rapidjson::Value& value) {
  bool medium = false;
  bool refused = false;
  forEachContainer(value, [&](const rapidjson::Value& v) {
    if (!v.IsObject()) return;
    for (const auto& m : v.GetObject()) {
      medium |= m.name.GetStringLength() > kMaxNameBytesUnderPatterns;
      refused |= m.name.GetStringLength() > 4096;  // detail::kMaxPatternSubjectBytes
    }
  });
  return medium && !refused;
}

const fs::path& workDir() {
  static const fs::path dir = [] {
    fuzz::copyDemoSchemas(fuzz::scratchDir());
    return fuzz::scratchDir();
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string_view> parts = fuzz::splitAtNul(input, 2);
  const std::string_view schema_text = parts[0];
  const std::string_view document_text = parts.size() > 1 ? parts[1] : parts[0];

  const bool yaml = schema_text.substr(0, 3) == "---";
  const fs::path file = workDir() / (yaml ? "fuzz.yaml" : "fuzz.json");
  fuzz::writeFile(file, schema_text);

  auto compiled = schema::compileFile(file);
  if (auto* error = std::get_if<schema::CompileError>(&compiled)) {
    if (error->message.empty()) fuzz::fail("empty compile error");
    return 0;
  }
  const schema::Schema& compiled_schema = *std::get<schema::SchemaPtr>(compiled);

  // `kpipe explain SCHEMA`: the outline of the schema as written, once it compiles.
  auto written = schema::parseSchemaDocument(file, schema_text);
  if (auto* error = std::get_if<std::string>(&written)) fuzz::fail("compiles, but: " + *error);
  const rapidjson::Document& as_written = *std::get<std::unique_ptr<rapidjson::Document>>(written);
  if (schema::outline(as_written).empty()) fuzz::fail("empty outline");
  const bool uses_pattern_properties = hasMemberNamed(as_written, "patternProperties");

  rapidjson::Document document;
  document.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(
      document_text.data(), document_text.size());
  if (document.HasParseError()) return 0;
  // Both callers, the pipeline (router.cpp) and `kpipe explain`, refuse deeper documents:
  // valijson's uniqueItems, enum and const checks recurse once per level.
  if (nestsDeeperThan(document, 128)) return 0;
  // The known gap of pattern.h: valijson matches patternProperties with a backtracking
  // std::regex, exponential in the property name for patterns such as ^(a+)+$ (30 bytes: 15 s).
  // Left out, or every run would end in that timeout: names stay short under patternProperties.
  if (uses_pattern_properties && hasNamesForSlowPatterns(document)) return 0;

  static schema::Validator validator;  // one per thread, reused, as the pipeline does
  std::vector<schema::Failure> failures;
  const bool valid = validator.validate(compiled_schema, document, &failures);
  if (valid != failures.empty()) fuzz::fail("validate() and its failures disagree");
  if (failures.size() > 16) fuzz::fail("more failures than asked for");
  const std::string explanation = schema::explain(failures);
  if (!valid && explanation.empty()) fuzz::fail("an invalid document without explanation");
  if (validator.validate(compiled_schema, document, nullptr) != valid) {
    fuzz::fail("validate() differs without failures");
  }
  return 0;
}
