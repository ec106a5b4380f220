#include "daemon/replay/replay.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace kpipe::replay {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// 2026-11-26T10:00:00Z
constexpr Millis kNov26 = 1795687200000;
constexpr Millis kHour = 3'600'000;

Millis timeOf(std::string_view text, Millis now = kNov26) {
  auto parsed = parseTime(text, now);
  if (auto* error = std::get_if<std::string>(&parsed)) {
    ADD_FAILURE() << text << ": " << *error;
    return -1;
  }
  return std::get<Millis>(parsed);
}

std::string timeError(std::string_view text) {
  auto parsed = parseTime(text, kNov26);
  if (auto* error = std::get_if<std::string>(&parsed)) return *error;
  ADD_FAILURE() << text << " parsed as " << std::get<Millis>(parsed);
  return "";
}

// ---- times ----

TEST(ParseTimeTest, Rfc3339Utc) {
  EXPECT_EQ(timeOf("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(timeOf("2026-11-26T10:00:00Z"), kNov26);
  EXPECT_EQ(timeOf("2026-11-26t10:00:00z"), kNov26);
  EXPECT_EQ(timeOf("2026-11-26 10:00:00Z"), kNov26);
  EXPECT_EQ(timeOf("2000-02-29T23:59:59Z"), 951868799000);
}

TEST(ParseTimeTest, Rfc3339FractionAndOffset) {
  EXPECT_EQ(timeOf("2026-11-26T10:00:00.5Z"), kNov26 + 500);
  EXPECT_EQ(timeOf("2026-11-26T10:00:00.123456789Z"), kNov26 + 123);
  EXPECT_EQ(timeOf("2026-11-26T11:00:00+01:00"), kNov26);
  EXPECT_EQ(timeOf("2026-11-26T05:30:00-04:30"), kNov26);
}

TEST(ParseTimeTest, DurationsAreBeforeNow) {
  EXPECT_EQ(timeOf("2h"), kNov26 - 2 * kHour);
  EXPECT_EQ(timeOf("30m"), kNov26 - 30 * 60'000);
  EXPECT_EQ(timeOf("7d"), kNov26 - 7 * 24 * kHour);
  EXPECT_EQ(timeOf("0s"), kNov26);
  EXPECT_EQ(timeOf("250ms"), kNov26 - 250);
}

TEST(ParseTimeTest, BadInputSaysWhatIsAccepted) {
  for (const char* text : {"", "yesterday", "2h30m", "-2h", "5w", "12", "now"}) {
    std::string error = timeError(text);
    EXPECT_THAT(error, HasSubstr("is not a time")) << text;
    EXPECT_THAT(error, HasSubstr("RFC 3339")) << text;
    EXPECT_THAT(error, HasSubstr("2h")) << text;
  }
}

TEST(ParseTimeTest, BadDatesAreNamed) {
  EXPECT_THAT(timeError("2026-02-30T00:00:00Z"), HasSubstr("no such date"));
  EXPECT_THAT(timeError("2026-13-01T00:00:00Z"), HasSubstr("no such date"));
  EXPECT_THAT(timeError("2026-11-26T24:00:00Z"), HasSubstr("no such time of day"));
  EXPECT_THAT(timeError("2026-11-26T10:60:00Z"), HasSubstr("no such time of day"));
  EXPECT_THAT(timeError("2026-11-26T10:00:00"), HasSubstr("no time zone"));
  EXPECT_THAT(timeError("2026-11-26"), HasSubstr("is not a time"));
  EXPECT_THAT(timeError("2026-11-26T10:00Z"), HasSubstr("is not a time"));
  EXPECT_THAT(timeError("2026-11-26T10:00:00.Z"), HasSubstr("is not a time"));
  EXPECT_THAT(timeError("2026-11-26T10:00:00Zjunk"), HasSubstr("is not a time"));
  EXPECT_THAT(timeError("2026-11-26T10:00:00+1:00"), HasSubstr("is not a time"));
  EXPECT_THAT(timeError("2026-11-26T10:00:00+24:00"), HasSubstr("bad time zone offset"));
}

// ---- arguments ----

Options parsed(std::vector<std::string_view> args) {
  auto result = parseArgs(args, kNov26);
  if (auto* error = std::get_if<std::string>(&result)) {
    ADD_FAILURE() << *error;
    return {};
  }
  return std::get<Options>(result);
}

std::string argsError(std::vector<std::string_view> args) {
  auto result = parseArgs(args, kNov26);
  if (auto* error = std::get_if<std::string>(&result)) return *error;
  ADD_FAILURE() << "parsed";
  return "";
}

TEST(ParseArgsTest, Minimal) {
  Options o = parsed({"kpipe.yaml", "--from", "e", "--to", "in"});
  EXPECT_EQ(o.config, "kpipe.yaml");
  EXPECT_EQ(o.from, "e");
  EXPECT_EQ(o.to, "in");
  EXPECT_FALSE(o.dry_run);
  EXPECT_EQ(o.bootstrap, "");
  EXPECT_FALSE(o.filter.hasReason());
  EXPECT_FALSE(o.filter.since);
  EXPECT_FALSE(o.filter.until);
}

TEST(ParseArgsTest, EveryFlagInAnyOrderAndWithEquals) {
  Options o = parsed({"--dry-run", "--reason=^at /ts", "--from=e", "--since", "2h", "cfg.yaml",
                      "--until=2026-11-26T10:00:00Z", "--to", "in", "--bootstrap", "h:9092"});
  EXPECT_EQ(o.config, "cfg.yaml");
  EXPECT_EQ(o.from, "e");
  EXPECT_EQ(o.to, "in");
  EXPECT_TRUE(o.dry_run);
  EXPECT_EQ(o.bootstrap, "h:9092");
  EXPECT_EQ(o.filter.reasonSource(), "^at /ts");
  EXPECT_EQ(o.filter.since, kNov26 - 2 * kHour);
  EXPECT_EQ(o.filter.until, kNov26);
}

TEST(ParseArgsTest, UsageErrors) {
  EXPECT_THAT(argsError({}), HasSubstr("missing CONFIG"));
  EXPECT_THAT(argsError({"c", "--to", "in"}), HasSubstr("missing --from"));
  EXPECT_THAT(argsError({"c", "--from", "e"}), HasSubstr("missing --to"));
  EXPECT_THAT(argsError({"c", "d", "--from", "e", "--to", "in"}),
              HasSubstr("unexpected argument \"d\""));
  EXPECT_THAT(argsError({"c", "--from", "e", "--to", "in", "--form", "x"}),
              HasSubstr("unknown argument --form"));
  EXPECT_THAT(argsError({"c", "--from", "e", "--to", "in", "-x"}),
              HasSubstr("unknown argument -x"));
  EXPECT_THAT(argsError({"c", "--from", "e", "--to"}), HasSubstr("--to needs a value"));
  EXPECT_THAT(argsError({"c", "--from", "e", "--from", "f", "--to", "in"}),
              HasSubstr("--from given twice"));
  EXPECT_THAT(argsError({"c", "--from=", "--to", "in"}), HasSubstr("--from needs a non-empty"));
  EXPECT_THAT(argsError({"c", "--from", "e", "--to", "in", "--dry-run=yes"}),
              HasSubstr("--dry-run takes no value"));
  EXPECT_THAT(argsError({"c", "--from", "e", "--to", "e"}), HasSubstr("the same topic"));
}

TEST(ParseArgsTest, BadFilterValues) {
  EXPECT_THAT(argsError({"c", "--from", "e", "--to", "in", "--since", "yesterday"}),
              HasSubstr("--since: \"yesterday\" is not a time"));
  EXPECT_THAT(argsError({"c", "--from", "e", "--to", "in", "--until", "2026-02-30T00:00:00Z"}),
              HasSubstr("--until: \"2026-02-30T00:00:00Z\": no such date"));
  EXPECT_THAT(argsError({"c", "--from", "e", "--to", "in", "--since", "1h", "--until", "2h"}),
              HasSubstr("--since 1h is not before --until 2h"));
  EXPECT_THAT(argsError({"c", "--from", "e", "--to", "in", "--reason", "a)("}),
              HasSubstr("--reason \"a)(\" is not a valid regular expression"));
  EXPECT_THAT(argsError({"c", "--from", "e", "--to", "in", "--reason", "(a)\\1"}),
              HasSubstr("back-reference"));
}

// ---- filter ----

TEST(FilterTest, ReasonIsSearchedAnywhere) {
  Filter f;
  ASSERT_FALSE(f.setReason("schema|/ts"));
  EXPECT_TRUE(f.reasonMatches("at /ts: missing"));
  EXPECT_TRUE(f.reasonMatches("does not match schema"));
  EXPECT_FALSE(f.reasonMatches("not valid JSON"));
  ASSERT_FALSE(f.setReason("^at /msg_id"));
  EXPECT_TRUE(f.reasonMatches("at /msg_id: \"abc\" does not match pattern"));
  EXPECT_FALSE(f.reasonMatches("x at /msg_id"));
}

TEST(FilterTest, LongReasonsNeitherOverflowNorHang) {
  // given: a reason far longer than the backtracking executor's stack would survive
  std::string reason(200'000, 'a');
  Filter f;
  ASSERT_FALSE(f.setReason("(a|b)*c"));
  // then: matched in linear time, without recursion per character
  EXPECT_FALSE(f.reasonMatches(reason));
  EXPECT_TRUE(f.reasonMatches(reason + "c"));
  ASSERT_FALSE(f.setReason("^a+$"));
  EXPECT_TRUE(f.reasonMatches(reason));
  ASSERT_FALSE(f.setReason("(a+)+b"));
  EXPECT_FALSE(f.reasonMatches(std::string(5'000, 'a')));
}

ErrorRecordHeaders errorHeaders(std::string stage = "schema", std::string reason = "at /ts: x",
                                std::optional<std::string> timestamp = std::nullopt) {
  ErrorRecordHeaders h;
  h.stage = std::move(stage);
  h.reason = std::move(reason);
  h.origin_topic = "in";
  h.origin_timestamp = std::move(timestamp);
  return h;
}

TEST(DecideTest, ReplaysAnErrorRecordWithoutFilters) {
  EXPECT_EQ(decide(errorHeaders(), Filter{}), std::nullopt);
  // no timestamp is needed without --since/--until
  EXPECT_EQ(decide(errorHeaders("decode", "", "garbage"), Filter{}), std::nullopt);
}

TEST(DecideTest, RecordsWithoutAStageAreNotErrorRecords) {
  ErrorRecordHeaders audit;  // e.g. kpipe.audit.* only, or a plain record
  audit.reason = "duplicate";
  EXPECT_EQ(decide(audit, Filter{}), SkipReason::NotErrorRecord);
}

TEST(DecideTest, MalformedAndOmittedValues) {
  EXPECT_EQ(decide(errorHeaders(""), Filter{}), SkipReason::Malformed);
  ErrorRecordHeaders no_reason = errorHeaders();
  no_reason.reason.reset();
  EXPECT_EQ(decide(no_reason, Filter{}), SkipReason::Malformed);
  ErrorRecordHeaders omitted = errorHeaders();
  omitted.value_omitted = true;
  EXPECT_EQ(decide(omitted, Filter{}), SkipReason::ValueOmitted);
}

TEST(DecideTest, ByReason) {
  Filter f;
  ASSERT_FALSE(f.setReason("^at /ts"));
  EXPECT_EQ(decide(errorHeaders("schema", "at /ts: missing"), f), std::nullopt);
  EXPECT_EQ(decide(errorHeaders("schema", "at /msg_id: bad"), f), SkipReason::Reason);
}

TEST(DecideTest, ByTimeIsSinceInclusiveUntilExclusive) {
  Filter f;
  f.since = 1000;
  f.until = 2000;
  EXPECT_EQ(decide(errorHeaders("schema", "r", "999"), f), SkipReason::Since);
  EXPECT_EQ(decide(errorHeaders("schema", "r", "1000"), f), std::nullopt);
  EXPECT_EQ(decide(errorHeaders("schema", "r", "1999"), f), std::nullopt);
  EXPECT_EQ(decide(errorHeaders("schema", "r", "2000"), f), SkipReason::Until);
}

TEST(DecideTest, GarbledTimestampsAreCountedNotCrashed) {
  Filter f;
  f.since = 0;
  for (const char* ts : {"", "-1", "abc", "12x", " 12", "99999999999999999999999", "1.5"}) {
    EXPECT_EQ(decide(errorHeaders("schema", "r", ts), f), SkipReason::NoTimestamp) << ts;
  }
  EXPECT_EQ(decide(errorHeaders("schema", "r", std::nullopt), f), SkipReason::NoTimestamp);
}

TEST(DecideTest, FirstReasonWins) {
  Filter f;
  ASSERT_FALSE(f.setReason("nothing matches this"));
  f.since = 5000;
  EXPECT_EQ(decide(errorHeaders("schema", "r", "1"), f), SkipReason::Reason);
}

// ---- headers ----

TEST(HeadersTest, ReadsTheLastKpipeHeadersOfAnErrorRecord) {
  Headers headers = {
      {"traceparent", "00-abc-01"},
      {"kpipe.error.stage", "bogus (from the original input)"},
      {"kpipe.error.stage", "schema"},
      {"kpipe.error.reason", "at /ts: missing"},
      {"kpipe.origin.topic", "in"},
      {"kpipe.origin.timestamp", "1234"},
      {"kpipe.error.value_omitted", std::nullopt},
  };
  ErrorRecordHeaders h = readErrorHeaders(headers);
  EXPECT_EQ(h.stage, "schema");
  EXPECT_EQ(h.reason, "at /ts: missing");
  EXPECT_EQ(h.origin_topic, "in");
  EXPECT_EQ(h.origin_timestamp, "1234");
  EXPECT_TRUE(h.value_omitted);
}

TEST(HeadersTest, NullValuesReadAsEmpty) {
  ErrorRecordHeaders h = readErrorHeaders({{"kpipe.error.stage", std::nullopt}});
  EXPECT_EQ(h.stage, "");
  EXPECT_FALSE(h.reason);
  EXPECT_EQ(decide(h, Filter{}), SkipReason::Malformed);
  EXPECT_EQ(decide(readErrorHeaders({}), Filter{}), SkipReason::NotErrorRecord);
}

TEST(HeadersTest, ReplayStripsEveryKpipeHeaderAndAddsItsOrigin) {
  Headers original = {
      {"traceparent", "00-abc-01"},
      {"kpipe.error.stage", "schema"},
      {"kpipe.replay.origin", "e:0:1"},  // from an earlier replay
      {"x-null", std::nullopt},
      {"kpipe.pipeline", "p"},
      {"Kpipe.case", "kept: names are case-sensitive"},
      {"kpipex", "kept"},
      {"traceparent", "second"},
  };
  Headers expected = {
      {"traceparent", "00-abc-01"},
      {"x-null", std::nullopt},
      {"Kpipe.case", "kept: names are case-sensitive"},
      {"kpipex", "kept"},
      {"traceparent", "second"},
      {"kpipe.replay.origin", "user-events.errors:3:42"},
  };
  EXPECT_EQ(replayHeaders(original, "user-events.errors:3:42"), expected);
  EXPECT_EQ(replayHeaders({}, "e:0:0"), (Headers{{"kpipe.replay.origin", "e:0:0"}}));
}

// ---- report ----

TEST(ReportTest, SaysWhatWasReplayedAndSkipped) {
  Report r;
  r.from = "user-events.errors";
  r.to = "user-events";
  r.partitions = 4;
  r.read = 120;
  r.replayed = {{"decode", 2}, {"schema", 35}, {"key", 0}};
  r.skipped = {{SkipReason::Reason, 80}, {SkipReason::Since, 3}};
  EXPECT_EQ(formatReport(r),
            "replay user-events.errors -> user-events: read 120 records from 4 partitions\n"
            "  replayed 37 (stage schema: 35, decode: 2)\n"
            "  skipped  80 by --reason, 3 by --since\n");
}

TEST(ReportTest, DryRunEmptyFailuresAndNotes) {
  Report r;
  r.from = "e";
  r.to = "in";
  r.partitions = 1;
  r.read = 1;
  r.dry_run = true;
  r.skipped = {{SkipReason::NotErrorRecord, 1}};
  EXPECT_EQ(formatReport(r),
            "replay e -> in (dry run: nothing written): read 1 record from 1 partition\n"
            "  would replay 0\n"
            "  skipped  1 not kpipe error records\n");
  r.dry_run = false;
  r.replayed = {{"bad\nstage", 1}};
  r.failed = 2;
  r.other_origin = 1;
  EXPECT_EQ(formatReport(r),
            "replay e -> in: read 1 record from 1 partition\n"
            "  replayed 1 (stage bad\\x0astage: 1)\n"
            "  skipped  1 not kpipe error records\n"
            "  failed   2 (not written)\n"
            "  note: 1 of them came from another topic than in (kpipe.origin.topic)\n");
}

// ---- run: what fails before any Kafka client exists ----

class TempConfig {
 public:
  explicit TempConfig(const std::string& kafka) {
    std::string pattern = (fs::temp_directory_path() / "kpipe-replay-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
    fs::create_directories(dir_ / "pipelines");
    std::ofstream(dir_ / "kpipe.yaml") << "kafka: " << kafka << "\npipelines: pipelines/\n";
  }
  ~TempConfig() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path file() const { return dir_ / "kpipe.yaml"; }

 private:
  fs::path dir_;
};

TEST(RunTest, EmbeddedBootstrapNeedsBootstrapFlag) {
  TempConfig config("{bootstrap: embedded}");
  Options o = parsed({config.file().c_str(), "--from", "e", "--to", "in"});
  std::ostringstream out, err;
  EXPECT_EQ(run(o, out, err), 2);
  EXPECT_EQ(out.str(), "");
  EXPECT_THAT(err.str(), HasSubstr("\"embedded\""));
  EXPECT_THAT(err.str(), HasSubstr("--bootstrap HOST:PORT"));
}

TEST(RunTest, ConfigErrorsAreReported) {
  TempConfig config("{bootstrap: embedded, propertys: {}}");
  Options o = parsed({config.file().c_str(), "--from", "e", "--to", "in", "--bootstrap", "x:1"});
  std::ostringstream out, err;
  EXPECT_EQ(run(o, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr("propertys"));
  EXPECT_THAT(err.str(), HasSubstr("kpipe replay: 1 config error"));
}

TEST(RunTest, BadKafkaPropertyIsReported) {
  TempConfig config("{bootstrap: 127.0.0.1:1, properties: {no.such.property: 1}}");
  Options o = parsed({config.file().c_str(), "--from", "e", "--to", "in"});
  std::ostringstream out, err;
  EXPECT_EQ(run(o, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr("no.such.property"));
}

}  // namespace
}  // namespace kpipe::replay
