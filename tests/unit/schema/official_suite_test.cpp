// The groups of the official JSON-Schema-Test-Suite (draft7) that valijson 1.0 passes in full,
// including `pattern`, which kpipe replaces with its own constraint, and the $ref cycles of
// infinite-loop-detection, which kpipe must not refuse. The suite lives next to the
// repository: $KPIPE_SOURCE_DIR/../shared/jsonschema-test-suite (ctest sets KPIPE_SOURCE_DIR).

#include "daemon/schema/validator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kpipe::schema {
namespace {

namespace fs = std::filesystem;

class OfficialSuiteTest : public ::testing::TestWithParam<const char*> {};

std::string toText(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

TEST_P(OfficialSuiteTest, AllCasesPass) {
  const char* source_dir = std::getenv("KPIPE_SOURCE_DIR");
  if (source_dir == nullptr) {
    GTEST_SKIP() << "KPIPE_SOURCE_DIR is not set";
  }
  const fs::path file = fs::path(source_dir) / ".." / "shared" / "jsonschema-test-suite" / "tests" /
                        "draft7" / GetParam();
  if (!fs::exists(file) && std::getenv("CI") == nullptr) {
    // A checkout without ../shared beside it (a fresh-machine check): CI always has it.
    GTEST_SKIP() << file << " is not there (../shared is not beside this checkout)";
  }
  std::ifstream in(file);
  ASSERT_TRUE(in) << "cannot read " << file;
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document groups;
  groups.Parse(text.str().c_str());
  ASSERT_FALSE(groups.HasParseError()) << file;

  Validator validator;
  int cases = 0;
  for (const auto& group : groups.GetArray()) {
    const std::string group_name = group["description"].GetString();
    auto compiled = compileText(toText(group["schema"]), group_name);
    ASSERT_TRUE(std::holds_alternative<SchemaPtr>(compiled))
        << std::get<CompileError>(compiled).message;
    const SchemaPtr schema = std::get<SchemaPtr>(compiled);
    for (const auto& test : group["tests"].GetArray()) {
      std::vector<Failure> failures;
      const bool valid = validator.validate(*schema, test["data"], &failures);
      EXPECT_EQ(valid, test["valid"].GetBool())
          << group_name << " / " << test["description"].GetString() << ": " << explain(failures);
      EXPECT_EQ(valid, failures.empty());
      ++cases;
    }
  }
  EXPECT_GT(cases, 0);
}

// Every draft7 group file that passes in full. Left out, for valijson 1.0 gaps (see
// ../shared/notes/valijson-1.0.md): type (1.0 is not an integer); minItems, maxItems, minLength,
// maxLength, minProperties, maxProperties (a decimal limit such as 2.0 is refused); multipleOf
// (1e-8); format; definitions, ref, refRemote ($id, remote documents).
INSTANTIATE_TEST_SUITE_P(
    Draft7, OfficialSuiteTest,
    ::testing::Values("additionalItems.json", "additionalProperties.json", "allOf.json",
                      "anyOf.json", "boolean_schema.json", "const.json", "contains.json",
                      "default.json", "dependencies.json", "enum.json", "exclusiveMaximum.json",
                      "exclusiveMinimum.json", "if-then-else.json", "infinite-loop-detection.json",
                      "items.json", "maximum.json", "minimum.json", "not.json", "oneOf.json",
                      "pattern.json", "patternProperties.json", "properties.json",
                      "propertyNames.json", "required.json", "uniqueItems.json"),
    [](const auto& info) {
      std::string name = info.param;
      name = name.substr(0, name.find('.'));
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

}  // namespace
}  // namespace kpipe::schema
