// The official JSON-Schema-Test-Suite (draft7) through kpipe's validator: every required file,
// the optional ones, and optional/format for the formats kpipe checks. Each set prints its
// counts. Every required test must pass except those in kRequiredSkips, one entry per test with
// the reason; a skip entry that no longer fails is reported too, so the list stays honest.
//
// The suite lives next to the repository: $KPIPE_SOURCE_DIR/../shared/jsonschema-test-suite
// (ctest sets KPIPE_SOURCE_DIR). refRemote.json's documents are served from the suite's remotes/
// directory through a LocalMirror of http://localhost:1234/, the same local-only lookup kpipe
// uses for `$ref`s to files: nothing is fetched from the network.

#include "daemon/schema/validator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace kpipe::schema {
namespace {

namespace fs = std::filesystem;

struct Skip {
  const char* file;  // relative to tests/draft7
  const char* test;  // "group description / test description"
  const char* reason;
};

// Required tests kpipe does not pass, one by one.
constexpr Skip kRequiredSkips[] = {
    {"definitions.json", "validate definition against metaschema / valid definition schema",
     "needs the draft-07 meta-schema, a remote document: kpipe never fetches remote documents "
     "and does not bundle the meta-schema"},
    {"definitions.json", "validate definition against metaschema / invalid definition schema",
     "needs the draft-07 meta-schema (as above)"},
    {"ref.json", "remote ref, containing refs itself / remote ref valid",
     "needs the draft-07 meta-schema (as above)"},
    {"ref.json", "remote ref, containing refs itself / remote ref invalid",
     "needs the draft-07 meta-schema (as above)"},
    {"ref.json", "empty tokens in $ref json-pointer / number is valid",
     "valijson 1.0 cannot follow a JSON pointer with an empty token (a definition named \"\"): "
     "the schema is refused at compile time"},
    {"ref.json", "empty tokens in $ref json-pointer / non-number is invalid",
     "valijson 1.0 cannot follow a JSON pointer with an empty token (as above)"},
};

// The optional/format files for formats kpipe checks (format.h); the others (idn-*, regex,
// uri-template, ...) are annotations only, so their "invalid" cases cannot pass.
const std::set<std::string> kCheckedFormats = {"date-time.json",
                                               "date.json",
                                               "time.json",
                                               "email.json",
                                               "hostname.json",
                                               "ipv4.json",
                                               "ipv6.json",
                                               "uri.json",
                                               "uri-reference.json",
                                               "iri.json",
                                               "iri-reference.json",
                                               "json-pointer.json",
                                               "relative-json-pointer.json",
                                               "unknown.json"};

std::string toText(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

struct Counts {
  int passed = 0;
  int failed = 0;
  int skipped = 0;
  std::vector<std::string> failures;       // "file: group / test: why"
  std::vector<std::string> stale_skips;    // skip entries whose test passes now
  std::vector<std::string> unknown_skips;  // skip entries that name no test
  // The fast path (fast_path.h) alone: tests whose schema has one, and those where its answer
  // differs from the expected one (a wrong "valid" would be a wrong verdict; a wrong
  // "invalid" would only cost speed, and is counted the same, to keep it honest).
  int fast_path_tests = 0;
  std::vector<std::string> fast_path_mismatches;
};

class OfficialSuite {
 public:
  OfficialSuite() {
    const char* source_dir = std::getenv("KPIPE_SOURCE_DIR");
    root_ = fs::path(source_dir != nullptr ? source_dir : KPIPE_SOURCE_DIR_DEFAULT) / ".." /
            "shared" / "jsonschema-test-suite";
    options_.mirrors.push_back({"http://localhost:1234/", root_ / "remotes"});
  }

  bool present() const { return fs::exists(draft7()); }
  fs::path draft7() const { return root_ / "tests" / "draft7"; }

  // The .json files directly in `dir`, sorted.
  static std::vector<fs::path> filesIn(const fs::path& dir) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.is_regular_file() && entry.path().extension() == ".json") {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  void run(const fs::path& file, const std::vector<Skip>& skips, Counts& counts) {
    const std::string name = fs::relative(file, draft7()).string();
    std::ifstream in(file);
    ASSERT_TRUE(in) << "cannot read " << file;
    std::stringstream text;
    text << in.rdbuf();
    rapidjson::Document groups;
    groups.Parse(text.str().c_str());
    ASSERT_FALSE(groups.HasParseError()) << file;

    std::set<std::string> seen;
    for (const auto& group : groups.GetArray()) {
      const std::string group_name = group["description"].GetString();
      auto compiled = compileText(toText(group["schema"]), name + " / " + group_name, options_);
      const auto* error = std::get_if<CompileError>(&compiled);
      for (const auto& test : group["tests"].GetArray()) {
        const std::string test_name = group_name + " / " + test["description"].GetString();
        seen.insert(test_name);
        std::string why;
        bool passed = false;
        if (error != nullptr) {
          why = "compile error: " + error->message;
        } else {
          std::vector<Failure> failures;
          const bool valid =
              validator_.validate(*std::get<SchemaPtr>(compiled), test["data"], &failures);
          passed = valid == test["valid"].GetBool() && valid == failures.empty();
          if (auto fast = fastPathVerdict(*std::get<SchemaPtr>(compiled), test["data"])) {
            ++counts.fast_path_tests;
            if (*fast != test["valid"].GetBool()) {
              counts.fast_path_mismatches.push_back(name + ": " + test_name);
            }
          }
          why = std::string(valid ? "valid" : "invalid: " + explain(failures)) + ", expected " +
                (test["valid"].GetBool() ? "valid" : "invalid");
        }
        const bool skipped = std::any_of(skips.begin(), skips.end(), [&](const Skip& skip) {
          return name == skip.file && test_name == skip.test;
        });
        if (skipped) {
          ++counts.skipped;
          if (passed) counts.stale_skips.push_back(name + ": " + test_name);
        } else if (passed) {
          ++counts.passed;
        } else {
          ++counts.failed;
          counts.failures.push_back(name + ": " + test_name + ": " + why);
        }
      }
    }
    for (const Skip& skip : skips) {
      if (name == skip.file && !seen.contains(skip.test)) {
        counts.unknown_skips.push_back(name + ": " + skip.test);
      }
    }
  }

 private:
  fs::path root_;
  CompileOptions options_;
  Validator validator_;
};

void print(const char* set, const Counts& counts, bool list_failures) {
  std::cout << "[official suite] " << set << ": " << counts.passed << " passed, " << counts.failed
            << " failed, " << counts.skipped << " skipped; " << counts.fast_path_tests
            << " through the fast path, " << counts.fast_path_mismatches.size()
            << " of them answered differently\n";
  if (list_failures) {
    for (const std::string& failure : counts.failures) {
      std::cout << "  fail: " << failure.substr(0, 300) << "\n";
    }
  }
}

// Skips without ../shared beside this checkout (a fresh-machine check); CI always has it.
#define KPIPE_REQUIRE_SUITE(suite)                                                               \
  if (!(suite).present()) {                                                                      \
    if (std::getenv("CI") != nullptr) {                                                          \
      FAIL() << (suite).draft7() << " is not there, and CI is set";                              \
    }                                                                                            \
    GTEST_SKIP() << (suite).draft7() << " is not there (../shared is not beside this checkout)"; \
  }

TEST(OfficialSuiteTest, RequiredPassExceptTheSkipList) {
  OfficialSuite suite;
  KPIPE_REQUIRE_SUITE(suite);
  const std::vector<Skip> skips(std::begin(kRequiredSkips), std::end(kRequiredSkips));
  Counts counts;
  const auto files = OfficialSuite::filesIn(suite.draft7());
  EXPECT_GE(files.size(), 37u) << "every required draft7 file";
  for (const fs::path& file : files) {
    suite.run(file, skips, counts);
  }
  print("required", counts, true);
  EXPECT_EQ(counts.failed, 0);
  for (const std::string& failure : counts.failures) {
    ADD_FAILURE() << failure;
  }
  for (const std::string& stale : counts.stale_skips) {
    ADD_FAILURE() << "passes now; remove it from kRequiredSkips: " << stale;
  }
  for (const std::string& unknown : counts.unknown_skips) {
    ADD_FAILURE() << "kRequiredSkips names no such test: " << unknown;
  }
  EXPECT_GE(counts.fast_path_tests, 300) << "the fast path covers the common keywords";
  for (const std::string& mismatch : counts.fast_path_mismatches) {
    ADD_FAILURE() << "the fast path answers differently: " << mismatch;
  }
}

TEST(OfficialSuiteTest, OptionalCounts) {
  OfficialSuite suite;
  KPIPE_REQUIRE_SUITE(suite);
  Counts counts;
  for (const fs::path& file : OfficialSuite::filesIn(suite.draft7() / "optional")) {
    suite.run(file, {}, counts);
  }
  print("optional", counts, true);
  EXPECT_GT(counts.passed, 0);
}

TEST(OfficialSuiteTest, FormatCounts) {
  OfficialSuite suite;
  KPIPE_REQUIRE_SUITE(suite);
  Counts counts;
  int not_run = 0;
  for (const fs::path& file : OfficialSuite::filesIn(suite.draft7() / "optional" / "format")) {
    if (kCheckedFormats.contains(file.filename().string())) {
      suite.run(file, {}, counts);
    } else {
      ++not_run;
    }
  }
  print("format", counts, true);
  std::cout << "[official suite] format: " << not_run
            << " files not run (formats kpipe does not check)\n";
  EXPECT_GT(counts.passed, 0);
}

}  // namespace
}  // namespace kpipe::schema
