#include "daemon/pipetest/runner.h"

#include "daemon/schema/rapidjson.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace kpipe::pipetest {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

fs::path sourceDir() {
  const char* dir = std::getenv("KPIPE_SOURCE_DIR");
  return dir ? dir : KPIPE_SOURCE_DIR_DEFAULT;
}

// A directory of its own per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "kpipe-pipetest-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path write(const std::string& name, const std::string& text) const {
    fs::path file = path_ / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

 private:
  fs::path path_;
};

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> errorTexts(const ParseResult& result) {
  std::vector<std::string> out;
  for (const auto& e : result.errors) out.push_back(e.str());
  return out;
}

fs::path repoConfig() { return sourceDir() / "config" / "kpipe.yaml"; }

Options options(fs::path config, std::vector<fs::path> files = {}, bool record = false) {
  Options o;
  o.config = std::move(config);
  o.test_files = std::move(files);
  o.record = record;
  return o;
}

const char* kValidUserEvent =
    "{msg_id: 6f1c8f9e-8a43-4c1e-9a6d-2b5b0e4d7c11, user_id: user-1, type: user.signed_up, ts: 1}";

// --- partitioner ---------------------------------------------------------------------------

TEST(PartitionerTest, MatchesJavaMurmur2Vectors) {
  // given: Kafka's own Utils.murmur2 test vectors (clients/.../utils/UtilsTest.java)
  const std::vector<std::pair<std::string, int32_t>> vectors = {
      {"21", -973932308},
      {"foobar", -790332482},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
      {"abc", 479470107},
  };
  for (const auto& [key, hash] : vectors) {
    int32_t positive = hash & 0x7fffffff;  // Utils.toPositive
    // when / then: with INT32_MAX partitions the partition is the positive hash itself
    EXPECT_EQ(partitionFor(key, std::numeric_limits<int32_t>::max()), positive) << key;
    for (int32_t n : {1, 3, 4, 12, 100}) EXPECT_EQ(partitionFor(key, n), positive % n) << key;
  }
}

// --- YAML -> JSON --------------------------------------------------------------------------

TEST(YamlToJsonTest, KeepsOrderAndTypes) {
  YAML::Node node = YAML::Load(
      R"({z: 1, a: "2", b: true, c: ~, d: [1.5, .5, 0x1F, +3, "no"], e: plain text, f: "tru\"e"})");
  JsonResult json = yamlToJson(node);
  ASSERT_FALSE(json.error) << *json.error;
  EXPECT_EQ(json.json,
            R"({"z":1,"a":"2","b":true,"c":null,"d":[1.5,0.5,31,3,"no"],"e":"plain text",)"
            R"("f":"tru\"e"})");
}

TEST(YamlToJsonTest, RefusesWhatJsonCannotHold) {
  EXPECT_TRUE(yamlToJson(YAML::Load("{x: .inf}")).error);
  EXPECT_TRUE(yamlToJson(YAML::Load("{[a]: 1}")).error);
}

// --- parsing -------------------------------------------------------------------------------

TEST(ParseTestFileTest, ReportsEveryErrorWithFileAndLine) {
  // given
  TempDir dir;
  fs::path file = dir.write("bad.test.yaml", R"(pipeline: user-events
partitons: 4
cases:
  - name: no input
    expect: {route: output}
  - name: typo
    input: {vlaue: {a: 1}}
    expect: {route: outptu}
  - name: typo
    input: {value: 1, value_text: "1"}
    expect: {route: error, reason_regex: "(", headers: {kpipe.error.stage: schema}}
)");
  // when
  ParseResult result = parseTestFile(file);
  // then
  ASSERT_FALSE(result.ok());
  std::string name = file.string();
  EXPECT_THAT(
      errorTexts(result),
      ::testing::ElementsAre(
          name + ":2:1: partitons: unknown key \"partitons\" (did you mean \"partitions\"?)",
          name + ":4:5: cases[0].input: missing required key \"input\"",
          name + ":7:12: cases[1].input: missing the value: give one of value, value_text, "
                 "value_file or tombstone: true",
          name + ":7:13: cases[1].input.vlaue: unknown key \"vlaue\" (did you mean "
                 "\"value\"?)",
          name + ":8:21: cases[1].expect.route: \"outptu\" is not one of output, error, "
                 "audit, drop (did you mean \"output\"?)",
          name + ":9:11: cases[2].name: duplicate case name \"typo\" (first at line 6)",
          HasSubstr(":10:20: cases[2].input.value: value, value_text, value_file and "
                    "tombstone exclude each other"),
          HasSubstr(":11:42: cases[2].expect.reason_regex: not a valid regular "
                    "expression"),
          HasSubstr(":11:57: cases[2].expect.headers.kpipe.error.stage: kpipe.* headers "
                    "are added by kpipe")));
}

TEST(ParseTestFileTest, ReadsMessagesAndValueFiles) {
  TempDir dir;
  dir.write("data/event.json", R"({"x": 1})");
  fs::path file = dir.write("ok.test.yaml", R"(cases:
  - name: several
    input:
      - {key: k, value: {b: "1", a: 2}, headers: {traceparent: t}}
      - {value_file: data/event.json}
      - {tombstone: true}
      - {key: ~, value_text: 'raw ${NOT_INTERPOLATED}'}
    expect: {route: error, key: ~}
)");
  ParseResult result = parseTestFile(file);
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errorTexts(result));
  const Case& c = result.file->cases.at(0);
  ASSERT_EQ(c.input.size(), 4u);
  EXPECT_EQ(c.input[0].key, "k");
  EXPECT_EQ(c.input[0].value, R"({"b":"1","a":2})");
  EXPECT_EQ(c.input[0].headers, (Headers{{"traceparent", "t"}}));
  EXPECT_EQ(c.input[1].value, R"({"x": 1})");
  EXPECT_FALSE(c.input[2].value);
  EXPECT_FALSE(c.input[3].key);
  EXPECT_EQ(c.input[3].value, "raw ${NOT_INTERPOLATED}");
  EXPECT_TRUE(c.expect->expect_no_key);
  EXPECT_EQ(c.where.line, 2);
}

// --- running -------------------------------------------------------------------------------

TEST(RunTestsTest, ShippedExamplesPass) {
  Report report = runTests(options(repoConfig()));
  std::ostringstream text;
  writeText(report, text);
  EXPECT_TRUE(report.ok()) << text.str();
  EXPECT_EQ(report.files.size(), 2u);
  EXPECT_GE(report.passed(), 16);
}

TEST(RunTestsTest, PassingAndFailingCasesAreReportedWithTheReason) {
  // given
  TempDir dir;
  fs::path file = dir.write("t.test.yaml", std::string(R"(pipeline: user-events
cases:
  - name: valid goes out
    input: {key: user-1, value: )") + kValidUserEvent +
                                               R"(}
    expect: {route: output, key: user-1, partition: 0}
  - name: wrongly expected
    input: {value_text: '{"msg_id":"abc","user_id":"u","type":"user.updated","ts":1}'}
    expect: {route: output}
)");
  // when
  Report report = runTests(options(repoConfig(), {file}));
  // then
  ASSERT_EQ(report.files.size(), 1u);
  ASSERT_TRUE(report.files[0].errors.empty());
  EXPECT_EQ(report.passed(), 1);
  EXPECT_EQ(report.failed(), 1);
  std::ostringstream text;
  writeText(report, text);
  EXPECT_THAT(text.str(), HasSubstr("PASS " + file.string() + ": valid goes out\n"));
  EXPECT_THAT(text.str(), HasSubstr("FAIL " + file.string() +
                                    ":6: wrongly expected\n"
                                    "    route: expected output, got error\n"
                                    "    actual: error at stage schema, no key\n"
                                    "    reason: at /msg_id: \"abc\" does not match pattern"));
  EXPECT_THAT(text.str(), HasSubstr("1 passed, 1 failed\n"));
}

TEST(RunTestsTest, FindsThePipelineByFileNameAndSharesTheStoreWhenAsked) {
  // given: a config of its own, test file next to the pipeline and without `pipeline:`
  TempDir dir;
  dir.write("kpipe.yaml", "pipelines: pipelines/\n");
  dir.write(
      "pipelines/events.yaml",
      "name: ev\ninput: {topic: in, group: g}\nkey: /k\ndedup: {id: /id}\noutput: {topic: out}\n");
  dir.write("pipelines/events.test.yaml", R"(shared_store: true
cases:
  - {name: first, input: {value: {k: a, id: 1}}, expect: {route: output, key: a}}
  - {name: same id in the next case, input: {value: {k: a, id: 1}}, expect: {route: audit}}
)");
  // when
  Report report = runTests(options(dir.path() / "kpipe.yaml"));
  // then
  std::ostringstream text;
  writeText(report, text);
  EXPECT_TRUE(report.ok()) << text.str();
  ASSERT_EQ(report.files.size(), 1u);
  EXPECT_EQ(report.files[0].pipeline, "ev");
}

TEST(RunTestsTest, UnknownPipelineIsAnErrorOfTheFile) {
  TempDir dir;
  fs::path file = dir.write("x.test.yaml", R"(pipeline: nope
cases: [{name: a, input: {value: {}}, expect: {route: error}}])");
  Report report = runTests(options(repoConfig(), {file}));
  ASSERT_EQ(report.files.size(), 1u);
  ASSERT_EQ(report.files[0].errors.size(), 1u);
  EXPECT_THAT(report.files[0].errors[0].str(),
              HasSubstr(file.string() + ":1:11: pipeline: no pipeline named \"nope\""));
  EXPECT_FALSE(report.ok());
}

// --- reports -------------------------------------------------------------------------------

TEST(ReportTest, JunitHasASuitePerFileAndAFailurePerFailingCase) {
  TempDir dir;
  fs::path file = dir.write("t.test.yaml", R"(pipeline: user-events
cases:
  - {name: "a <b> & c", input: {value_text: 'nope'}, expect: {route: error, stage: decode}}
  - {name: fails, input: {value_text: 'nope'}, expect: {route: output}}
)");
  Report report = runTests(options(repoConfig(), {file}));
  std::ostringstream xml;
  writeJunit(report, xml);
  EXPECT_THAT(xml.str(), HasSubstr("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                   "<testsuites name=\"kpipe test\" tests=\"2\" failures=\"1\" "
                                   "errors=\"0\">\n"));
  EXPECT_THAT(xml.str(), HasSubstr("<testsuite name=\"" + file.string() +
                                   "\" tests=\"2\" failures=\"1\" errors=\"0\">"));
  EXPECT_THAT(xml.str(), HasSubstr("<testcase classname=\"user-events\" name=\"a &lt;b&gt; "
                                   "&amp; c\" file=\"" +
                                   file.string() + "\" line=\"3\"/>"));
  EXPECT_THAT(xml.str(), HasSubstr("<failure message=\"route: expected output, got error\" "
                                   "type=\"mismatch\">route: expected output, got error\n"));
  EXPECT_THAT(xml.str(), HasSubstr("</testsuites>\n"));
}

TEST(ReportTest, JsonIsMachineReadable) {
  TempDir dir;
  fs::path file = dir.write("t.test.yaml", R"(pipeline: user-events
cases: [{name: fails, input: {value_text: 'nope'}, expect: {route: output}}]
)");
  std::ostringstream out, err;
  int status = testCommand({repoConfig().string(), file.string(), "--json"}, out, err);
  EXPECT_EQ(status, 1);
  rapidjson::Document doc;
  doc.Parse(out.str().c_str());
  ASSERT_FALSE(doc.HasParseError()) << out.str();
  EXPECT_EQ(doc["failed"].GetInt(), 1);
  const auto& c = doc["files"][0]["cases"][0];
  EXPECT_STREQ(c["name"].GetString(), "fails");
  EXPECT_STREQ(c["mismatches"][0]["field"].GetString(), "route");
  EXPECT_STREQ(c["actual"]["stage"].GetString(), "decode");
}

TEST(ReportTest, UsageErrors) {
  std::ostringstream out, err;
  EXPECT_EQ(testCommand({}, out, err), 2);
  EXPECT_EQ(testCommand({"x.yaml", "--junit"}, out, err), 2);
  EXPECT_EQ(testCommand({"x.yaml", "--frobnicate"}, out, err), 2);
  EXPECT_THAT(err.str(), HasSubstr("usage: kpipe test CONFIG"));
}

// --- record --------------------------------------------------------------------------------

TEST(RecordTest, WritesOutcomesThatThenPass) {
  // given: cases without expectations, and values whose quoting matters
  TempDir dir;
  fs::path file = dir.write("t.test.yaml", std::string(R"(pipeline: user-events
partitions: 8
cases:
  - name: valid
    input: {key: "007", value: )") + kValidUserEvent +
                                               R"(}
  - name: quoted number stays a string
    input: {value: {msg_id: "123", user_id: "true", type: user.updated, ts: 1}}
  - name: duplicate
    input: [{value: )" + kValidUserEvent + R"(}, {value: )" +
                                               kValidUserEvent +
                                               R"(}]
    expect: {route: output}
)");
  // when
  Report recorded = runTests(options(repoConfig(), {file}, true));
  // then: the file now holds the outcomes, and passes as it is
  ASSERT_TRUE(recorded.ok());
  std::string text = slurp(file);
  EXPECT_THAT(text, HasSubstr("expect: {route: output, key: user-1, partition: "));
  EXPECT_THAT(text, HasSubstr("msg_id: \"123\""));
  EXPECT_THAT(text, HasSubstr("user_id: \"true\""));
  EXPECT_THAT(text, HasSubstr("expect: {route: audit, key: ~, stage: dedup, reason: "));
  Report again = runTests(options(repoConfig(), {file}));
  std::ostringstream report;
  writeText(again, report);
  EXPECT_TRUE(again.ok()) << report.str() << text;
  EXPECT_EQ(again.passed(), 3);
  EXPECT_THAT(report.str(), ::testing::Not(HasSubstr("FAIL")));
}

TEST(RecordTest, LeavesFilesWithErrorsAlone) {
  TempDir dir;
  std::string original = "pipeline: user-events\ncases: [{name: x}]\n";
  fs::path file = dir.write("t.test.yaml", original);
  Report report = runTests(options(repoConfig(), {file}, true));
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(slurp(file), original);
}

}  // namespace
}  // namespace kpipe::pipetest
