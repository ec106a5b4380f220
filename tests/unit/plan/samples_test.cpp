// samples.h: sample files, test-case samples, and the copies `kpipe plan --measure` writes
// (fresh ids of the same type and form, keys from a pool).
#include "daemon/plan/samples.h"

#include "daemon/config/loader.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>
#include <set>

namespace kpipe::plan {
namespace {

namespace fs = std::filesystem;

fs::path sourceDir() {
  const char* dir = std::getenv("KPIPE_SOURCE_DIR");
  return dir != nullptr ? dir : KPIPE_SOURCE_DIR_DEFAULT;
}

std::vector<Sample> parsed(std::string_view text) {
  auto result = parseSampleLines(text, "s.jsonl");
  EXPECT_TRUE(std::holds_alternative<std::vector<Sample>>(result)) << std::get<std::string>(result);
  return std::get<std::vector<Sample>>(result);
}

std::string parseError(std::string_view text) {
  auto result = parseSampleLines(text, "s.jsonl");
  EXPECT_TRUE(std::holds_alternative<std::string>(result));
  return std::holds_alternative<std::string>(result) ? std::get<std::string>(result) : "";
}

TEST(SampleLines, ValuesAndKeyTabValue) {
  // given JSON values, a KEY<TAB>VALUE line (as tools/gen_events.py writes) and blank lines
  const auto samples = parsed(
      "{\"msg_id\":\"a\", \"n\":1}\r\n\n"
      "user-1\t{\"msg_id\":\"b\"}\n"
      "  \n"
      "{\"tabbed\":\t2}\n");
  // then each non-blank line is one message; a line that is JSON as a whole has no key
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_FALSE(samples[0].key);
  EXPECT_EQ(*samples[0].value, "{\"msg_id\":\"a\", \"n\":1}");
  EXPECT_EQ(samples[1].key, "user-1");
  EXPECT_EQ(*samples[1].value, "{\"msg_id\":\"b\"}");
  EXPECT_FALSE(samples[2].key);
  EXPECT_EQ(samples[1].bytes(), 6u + 14u);
}

TEST(SampleLines, ErrorsNameTheLine) {
  EXPECT_EQ(parseError("{}\nnot json\n"),
            "s.jsonl:2: not JSON: a line is one message value (JSON), or KEY<TAB>VALUE");
  EXPECT_EQ(parseError("k\t{oops\n"), "s.jsonl:1: the value after the tab is not JSON");
  EXPECT_EQ(parseError("\n\n"), "s.jsonl: no sample messages (one JSON value per line)");
  auto missing = readSampleFile("/nonexistent/samples.jsonl");
  ASSERT_TRUE(std::holds_alternative<std::string>(missing));
  EXPECT_NE(std::get<std::string>(missing).find("cannot read"), std::string::npos);
}

TEST(Reshape, UuidStaysAUuidOfTheSameVersion) {
  const std::string uuid = "6f1c8f9e-8a43-4c1e-9a6d-2b5b0e4d7c11";
  const std::regex v4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{15}, uint64_t{16}, uint64_t{1} << 39,
                     (uint64_t{1} << 40) - 1}) {
    const std::string fresh = reshape(uuid, v, uint64_t{1} << 40);
    EXPECT_TRUE(std::regex_match(fresh, v4)) << fresh;
    // Only the last 10 hex digits carry the value: 16^10 >= 2^40.
    EXPECT_EQ(fresh.substr(0, 26), uuid.substr(0, 26)) << fresh;
    seen.insert(fresh);
  }
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(reshape(uuid, 0x2a, uint64_t{1} << 40), "6f1c8f9e-8a43-4c1e-9a6d-2b000000002a");
  // Upper-case hex stays upper-case.
  EXPECT_EQ(reshape("6F1C8F9E-8A43-4C1E-9A6D-2B5B0E4D7C11", 0xab, 256),
            "6F1C8F9E-8A43-4C1E-9A6D-2B5B0E4D7CAB");
}

TEST(Reshape, KeepsEachCharactersClass) {
  // "pay-0001": 10^4 · 26^3 < 2^40, so every letter and digit carries the value.
  EXPECT_EQ(capacityOf("pay-0001", uint64_t{1} << 40), 10'000ull * 26 * 26 * 26);
  const std::regex form("^[a-z]{3}-[0-9]{4}$");
  std::set<std::string> seen;
  for (uint64_t v = 0; v < 20'000; ++v) {
    const std::string fresh = reshape("pay-0001", v, uint64_t{1} << 40);
    ASSERT_TRUE(std::regex_match(fresh, form)) << fresh;
    seen.insert(fresh);
  }
  EXPECT_EQ(seen.size(), 20'000u);  // distinct values, distinct strings
  // Only as many characters as the capacity needs change, from the right.
  EXPECT_EQ(reshape("user-1", 7, 10), "user-7");
  EXPECT_EQ(reshape("user-1", 37, 100), "used-7");  // 37 = 3 · 10 + 7: 'r' → 'd', '1' → '7'
  EXPECT_EQ(reshape("Acct_42", 0, 1000), "Acca_00");
  // Nothing to reshape: the value is appended.
  EXPECT_EQ(reshape("--", 5, 100), "--5");
}

TEST(FindScalar, LocatesTheLiteral) {
  const std::string json =
      R"({"a": {"b": [10, "x\u0041y", {"c": -1.5e3}]}, "id" :  "abc" , "t": true, "o": {}})";
  auto id = findScalar(json, "/id");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->type, ScalarSpan::Type::String);
  EXPECT_EQ(json.substr(id->begin, id->end - id->begin), "\"abc\"");
  EXPECT_EQ(id->text, "abc");
  auto escaped = findScalar(json, "/a/b/1");
  ASSERT_TRUE(escaped);
  EXPECT_EQ(escaped->text, "xAy");
  EXPECT_EQ(json.substr(escaped->begin, escaped->end - escaped->begin), "\"x\\u0041y\"");
  auto first = findScalar(json, "/a/b/0");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->type, ScalarSpan::Type::Integer);
  EXPECT_EQ(first->text, "10");
  auto nested = findScalar(json, "/a/b/2/c");
  ASSERT_TRUE(nested);
  EXPECT_EQ(nested->type, ScalarSpan::Type::Number);
  EXPECT_EQ(nested->text, "-1.5e3");
  EXPECT_FALSE(findScalar(json, "/t"));        // a boolean
  EXPECT_FALSE(findScalar(json, "/o"));        // an object
  EXPECT_FALSE(findScalar(json, "/a/b/3"));    // no such element
  EXPECT_FALSE(findScalar(json, "/nope"));     // no such member
  EXPECT_FALSE(findScalar("{oops", "/id"));    // not JSON
  EXPECT_FALSE(findScalar(json, "no-slash"));  // not a pointer
  auto escaped_name = findScalar(R"({"a/b": 1, "m~n": 2})", "/m~0n");
  ASSERT_TRUE(escaped_name);
  EXPECT_EQ(escaped_name->text, "2");
}

TEST(CopyMaker, FreshIdsKeysFromAPoolTheRestUntouched) {
  // given two samples with string ids and keys, one with a numeric id, one without an id
  std::vector<Sample> samples = {
      {"k1",
       R"({"msg_id": "6f1c8f9e-8a43-4c1e-9a6d-2b5b0e4d7c11", "user_id":"user-1", "x":[1]})",
       {{"traceparent", "00-aa-bb-01"}}},
      {std::nullopt, R"({"user_id":"user-2","msg_id":77})", {}},
      {std::nullopt, R"({"user_id":"user-3"})", {}},
  };
  CopyMaker copies(samples,
                   {.id_pointer = "/msg_id", .key_pointer = "/user_id", .keys = 5, .salt = 1000});
  EXPECT_EQ(copies.size(), 3u);
  EXPECT_EQ(copies.idsRewritten(), 2u);
  EXPECT_EQ(copies.keysRewritten(), 3u);
  std::set<std::string> ids, keys;
  std::string value;
  for (uint64_t n = 0; n < 3000; ++n) {
    const Sample& sample = copies.make(n, value);
    if (n % 3 == 0) {
      EXPECT_EQ(sample.key, "k1");  // the Kafka key and headers as in the sample
      ASSERT_EQ(sample.headers.size(), 1u);
      auto id = findScalar(value, "/msg_id");
      ASSERT_TRUE(id) << value;
      EXPECT_EQ(id->type, ScalarSpan::Type::String);
      EXPECT_TRUE(ids.insert(id->text).second) << "id used twice: " << id->text;
      // Only the two literals changed.
      EXPECT_EQ(value.substr(0, 12), R"({"msg_id": ")");
      EXPECT_TRUE(value.ends_with(R"(", "x":[1]})")) << value;
    } else if (n % 3 == 1) {
      auto id = findScalar(value, "/msg_id");
      ASSERT_TRUE(id) << value;
      EXPECT_EQ(id->type, ScalarSpan::Type::Integer);  // a number stays a number
      EXPECT_TRUE(ids.insert(id->text).second) << "id used twice: " << id->text;
    } else {
      EXPECT_FALSE(findScalar(value, "/msg_id"));  // none to rewrite: it stays without
    }
    keys.insert(findScalar(value, "/user_id")->text);
  }
  EXPECT_EQ(ids.size(), 2000u);
  // n % 5 picks the key value; its form is the sample's ("user-N" keeps "user-").
  EXPECT_EQ(keys.size(), 5u);
  for (const auto& key : keys) EXPECT_TRUE(key.starts_with("user-")) << key;
  EXPECT_DOUBLE_EQ(
      copies.averageBytes(),
      static_cast<double>(samples[0].bytes() + samples[1].bytes() + samples[2].bytes()) / 3);
}

TEST(CopyMaker, KeysStayWithoutAPoolAndIdsChangeBetweenRuns) {
  std::vector<Sample> samples = {{std::nullopt, R"({"id":"a-1","k":"user-1"})", {}}};
  CopyMaker keep(samples, {.id_pointer = "/id", .key_pointer = "/k", .keys = 0, .salt = 0});
  CopyMaker other_run(samples, {.id_pointer = "/id", .key_pointer = "/k", .keys = 0, .salt = 7});
  std::string a, b;
  keep.make(0, a);
  other_run.make(0, b);
  EXPECT_NE(findScalar(a, "/id")->text, findScalar(b, "/id")->text);
  EXPECT_EQ(findScalar(a, "/k")->text, "user-1");
  EXPECT_EQ(keep.keysRewritten(), 0u);
  // The key is the id: rewritten once, as the id.
  CopyMaker same(samples, {.id_pointer = "/id", .key_pointer = "/id", .keys = 10, .salt = 0});
  same.make(3, a);
  EXPECT_EQ(same.keysRewritten(), 0u);
  EXPECT_EQ(findScalar(a, "/id")->text, reshape("a-1", 3, CopyMaker::kIdCapacity));
}

TEST(CopyMaker, TombstonesAndNonJsonStayAsTheyAre) {
  std::vector<Sample> samples = {{"k", std::nullopt, {}}, {std::nullopt, "not json", {}}};
  CopyMaker copies(samples, {.id_pointer = "/id", .key_pointer = "/k", .keys = 10, .salt = 0});
  std::string value = "junk";
  EXPECT_FALSE(copies.make(0, value).value);
  EXPECT_EQ(value, "");
  copies.make(1, value);
  EXPECT_EQ(value, "not json");
}

TEST(SamplesFromTests, TheDemoPipelinesOutputCases) {
  auto loaded = config::loadConfig(sourceDir() / "config" / "kpipe.yaml",
                                   [](std::string_view) { return std::nullopt; });
  ASSERT_TRUE(loaded.ok()) << loaded.errors.front().str();
  for (const auto& p : loaded.config->pipelines) {
    Samples samples = samplesFromTests(*loaded.config, p);
    // user-events.test.yaml and payments.test.yaml: two cases each expect the output.
    ASSERT_EQ(samples.messages.size(), 2u) << p.name;
    EXPECT_EQ(samples.source, "the cases of " + p.name + ".test.yaml that expect the output");
    for (const auto& s : samples.messages) {
      ASSERT_TRUE(s.value);
      EXPECT_TRUE(findScalar(*s.value, p.dedup->id_pointer)) << *s.value;
    }
  }
}

}  // namespace
}  // namespace kpipe::plan
