// The scalar syntaxes: ${VAR} interpolation, durations, sizes, and how errors print.

#include "daemon/config/loader.h"
#include "daemon/config/reader.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace kpipe::config {
namespace {

using namespace std::chrono_literals;

EnvLookup fakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ParseDurationTest, AcceptsIntegerAndUnit) {
  const std::pair<const char*, Duration> cases[] = {{"250ms", 250ms}, {"30s", 30s},    {"5m", 5min},
                                                    {"2h", 2h},       {"7d", 7 * 24h}, {"0s", 0ms}};
  for (const auto& [text, expected] : cases) {
    EXPECT_EQ(parseDuration(text), expected) << text;
  }
}

TEST(ParseDurationTest, RejectsMalformed) {
  for (const char* text : {"", "7", "7x", "ms", "-1s", "+1s", " 1s", "1s ", "1.5s", "1 s", "1S",
                           "99999999999999999999d", "999999999999999d"}) {
    EXPECT_EQ(parseDuration(text), std::nullopt) << text;
  }
}

TEST(ParseSizeTest, AcceptsBytesAndUnits) {
  const std::pair<const char*, uint64_t> cases[] = {
      {"1024", 1024},        {"512B", 512},          {"64KiB", 64 * 1024},
      {"1MiB", 1024 * 1024}, {"2GiB", 2ULL << 30},   {"1KB", 1000},
      {"3MB", 3'000'000},    {"1GB", 1'000'000'000}, {"0", 0}};
  for (const auto& [text, expected] : cases) {
    EXPECT_EQ(parseSize(text), expected) << text;
  }
}

TEST(ParseSizeTest, RejectsMalformed) {
  for (const char* text : {"", "MiB", "1.5MiB", "-1", "1 MiB", "1mib", "1Mi", "1XB",
                           "99999999999999999999", "17179869184GiB"}) {
    EXPECT_EQ(parseSize(text), std::nullopt) << text;
  }
}

TEST(InterpolateTest, SubstitutesSetVariables) {
  // when
  InterpolationResult result =
      interpolate("${HOST}:${PORT}", fakeEnv({{"HOST", "kafka"}, {"PORT", "9092"}}));
  // then
  EXPECT_EQ(result.error, std::nullopt);
  EXPECT_EQ(result.value, "kafka:9092");
}

TEST(InterpolateTest, DefaultAppliesWhenUnsetOrEmpty) {
  auto env = fakeEnv({{"SET", "value"}, {"EMPTY", ""}});
  EXPECT_EQ(interpolate("${UNSET:-embedded}", env).value, "embedded");
  EXPECT_EQ(interpolate("${EMPTY:-fallback}", env).value, "fallback");
  EXPECT_EQ(interpolate("${SET:-fallback}", env).value, "value");
  EXPECT_EQ(interpolate("${UNSET:-}", env).value, "");
  EXPECT_EQ(interpolate("${EMPTY}", env).value, "");
}

TEST(InterpolateTest, UnsetVariableWithoutDefaultIsAnError) {
  InterpolationResult result = interpolate("${KAFKA_HOST}:9092", fakeEnv({}));
  EXPECT_EQ(result.error,
            "environment variable KAFKA_HOST is not set (write ${KAFKA_HOST:-default} "
            "for a default)");
}

TEST(InterpolateTest, DoubleDollarIsALiteralDollarAndALoneDollarStays) {
  auto env = fakeEnv({{"X", "1"}});
  EXPECT_EQ(interpolate("$${X}", env).value, "${X}");
  EXPECT_EQ(interpolate("pa$$word", env).value, "pa$word");
  EXPECT_EQ(interpolate("pa$word$", env).value, "pa$word$");
  EXPECT_EQ(interpolate("$$$${X}", env).value, "$${X}");
}

TEST(InterpolateTest, RefusesLineBreaks) {
  InterpolationResult from_env = interpolate("${PEM}", fakeEnv({{"PEM", "-----BEGIN\nKEY-----"}}));
  EXPECT_EQ(from_env.error,
            "environment variable PEM contains a line break; secret values must be single-line");
  InterpolationResult literal = interpolate("a\nb", fakeEnv({}));
  EXPECT_EQ(literal.error, "value spans several lines; values must be single-line");
}

TEST(InterpolateTest, RejectsUnterminatedAndMalformedReferences) {
  EXPECT_EQ(interpolate("${HOST", fakeEnv({})).error,
            "unterminated \"${\" in \"${HOST\" (write $$ for a literal $)");
  EXPECT_EQ(interpolate("${HOST:default}", fakeEnv({})).error,
            "invalid variable reference \"${HOST:default}\" (write ${NAME} or ${NAME:-default})");
  EXPECT_TRUE(interpolate("${}", fakeEnv({})).error.has_value());
  EXPECT_TRUE(interpolate("${1X}", fakeEnv({})).error.has_value());
}

TEST(ConfigErrorTest, PrintsFileLineColumnPathAndMessage) {
  ConfigError full{{"p/a.yaml", 3, 9}, "input.topic", "must not be empty"};
  EXPECT_EQ(full.str(), "p/a.yaml:3:9: input.topic: must not be empty");
  ConfigError file_level{{"kpipe.yaml", 0, 0}, "", "file not found"};
  EXPECT_EQ(file_level.str(), "kpipe.yaml: file not found");
  EXPECT_EQ((SourceLocation{"x.yaml", 4, 0}).str(), "x.yaml:4");
}

TEST(SuggestTest, PicksTheClosestKeyWithinTwoEdits) {
  std::vector<std::string> keys = {"topic", "group", "audit_topic"};
  EXPECT_EQ(detail::suggest("topc", keys), "topic");
  EXPECT_EQ(detail::suggest("gruop", keys), "group");
  EXPECT_EQ(detail::suggest("audit-topic", keys), "audit_topic");
  EXPECT_EQ(detail::suggest("partitions", keys), std::nullopt);
  EXPECT_EQ(detail::suggest("tpoci", keys), std::nullopt);  // 3+ edits
}

}  // namespace
}  // namespace kpipe::config
