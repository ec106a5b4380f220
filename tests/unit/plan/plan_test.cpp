// plan.h: the arithmetic, the warnings and the command line of `kpipe plan`.
#include "daemon/plan/plan.h"

#include "daemon/schema/rapidjson.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kpipe::plan {
namespace {

Inputs typical() {
  Inputs in;
  in.throughput = 50'000;
  in.message_bytes = 1024;
  in.per_partition = 4'000;
  in.latency_seconds = 0.025;
  in.brokers = 3;
  in.replication_factor = 3;
  in.retention_seconds = 7 * 86400;
  return in;
}

Plan planOf(const Inputs& in) {
  auto computed = compute(in);
  EXPECT_TRUE(std::holds_alternative<Plan>(computed)) << std::get<std::string>(computed);
  return std::get<Plan>(computed);
}

TEST(Plan, PartitionsFromThroughputAndHeadroomRoundedToTheBrokers) {
  Plan plan = planOf(typical());
  EXPECT_EQ(plan.partitions_needed, 19);  // 50000 × 1.5 / 4000 = 18.75
  EXPECT_EQ(plan.partitions, 21);         // a multiple of 3 brokers
  EXPECT_EQ(plan.consumers, 21);
  Inputs exact = typical();
  exact.headroom = 1;
  exact.per_partition = 5'000;
  exact.brokers = 5;
  exact.replication_factor = 3;
  EXPECT_EQ(planOf(exact).partitions, 10);  // exactly 10: no rounding up past it
}

TEST(Plan, LittlesLawAndDisk) {
  Plan plan = planOf(typical());
  ASSERT_TRUE(plan.inflight);
  EXPECT_DOUBLE_EQ(*plan.inflight, 1250);       // 50000/s × 25 ms
  EXPECT_EQ(*plan.inflight_per_partition, 60);  // ceil(1250 / 21)
  EXPECT_DOUBLE_EQ(plan.ingress_bytes_per_second, 50'000.0 * 1024);
  EXPECT_DOUBLE_EQ(plan.disk_bytes, 50'000.0 * 1024 * 7 * 86400 * 3);
  EXPECT_DOUBLE_EQ(plan.disk_bytes_per_broker, plan.disk_bytes / 3);
  // 84000 msg/s of capacity, 34000 spare: an hour of backlog takes 50000·3600/34000 s.
  EXPECT_NEAR(plan.catch_up_seconds_per_hour, 50'000.0 * 3600 / 34'000, 1e-6);
  Inputs no_latency = typical();
  no_latency.latency_seconds.reset();
  EXPECT_FALSE(planOf(no_latency).inflight);
}

TEST(Plan, WarnsAboutTooManyPartitionsAndKeyedTopicsGrowing) {
  Inputs big = typical();
  big.throughput = 10'000'000;
  big.per_partition = 1'000;
  big.brokers = 3;
  big.replication_factor = 1;
  Plan plan = planOf(big);
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_NE(plan.warnings[0].find("over ~100 × brokers × replication factor (300)"),
            std::string::npos);

  Inputs grow = typical();
  grow.current_partitions = 12;
  plan = planOf(grow);
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_NE(plan.warnings[0].find("keyed topic"), std::string::npos);
  grow.keyed = false;
  EXPECT_NE(planOf(grow).warnings.at(0).find("unkeyed"), std::string::npos);
  grow.current_partitions = 24;  // already enough
  EXPECT_TRUE(planOf(grow).warnings.empty());
}

TEST(Plan, RefusesInputsThatMeanNothing) {
  for (auto change : std::vector<void (*)(Inputs&)>{
           [](Inputs& in) { in.throughput = 0; },
           [](Inputs& in) { in.per_partition = -1; },
           [](Inputs& in) { in.message_bytes = 0; },
           [](Inputs& in) { in.replication_factor = 4; },  // more replicas than brokers
           [](Inputs& in) { in.headroom = 0.5; },
           [](Inputs& in) { in.latency_seconds = 0; },
       }) {
    Inputs in = typical();
    change(in);
    EXPECT_TRUE(std::holds_alternative<std::string>(compute(in)));
  }
}

int run(std::vector<std::string_view> args, std::string& out, std::string& err) {
  std::ostringstream o, e;
  int code = planCommand(args, o, e);
  out = o.str();
  err = e.str();
  return code;
}

TEST(PlanCommand, TextAndJson) {
  std::string out, err;
  ASSERT_EQ(run({"--throughput", "50k", "--message-size", "1KiB", "--per-partition", "4000",
                 "--latency", "25ms", "--current-partitions", "12"},
                out, err),
            0)
      << err;
  EXPECT_NE(out.find("partitions:  21 (19 needed at 4000 msg/s each"), std::string::npos) << out;
  EXPECT_NE(out.find("in flight:   1250 messages"), std::string::npos) << out;
  EXPECT_NE(out.find("25 ms"), std::string::npos) << out;
  EXPECT_NE(out.find("warning:"), std::string::npos) << out;

  ASSERT_EQ(run({"--throughput", "1.5M", "--message-size", "200", "--per-partition", "20k",
                 "--brokers", "6", "--replication-factor", "3", "--retention", "3d", "--json"},
                out, err),
            0)
      << err;
  rapidjson::Document doc;
  ASSERT_FALSE(doc.Parse(out.c_str()).HasParseError()) << out;
  EXPECT_EQ(doc["partitions"].GetInt(), 114);  // 1.5M × 1.5 / 20k = 112.5 → 113 → 114
  EXPECT_DOUBLE_EQ(doc["inputs"]["retention_seconds"].GetDouble(), 3 * 86400);
  EXPECT_TRUE(doc["inflight"].IsNull());
  EXPECT_EQ(doc["warnings"].Size(), 0u);
}

TEST(PlanCommand, BadArgumentsSayWhich) {
  std::string out, err;
  EXPECT_EQ(
      run({"--throughput", "fast", "--message-size", "1KiB", "--per-partition", "1"}, out, err), 2);
  EXPECT_NE(err.find("--throughput fast"), std::string::npos) << err;
  EXPECT_EQ(run({"--throughput", "10"}, out, err), 2);
  EXPECT_NE(err.find("usage"), std::string::npos);
  EXPECT_EQ(run({"--brokers"}, out, err), 2);
  EXPECT_NE(err.find("needs a value"), std::string::npos);
  EXPECT_EQ(
      run({"--throughput", "10", "--message-size", "1", "--per-partition", "1", "--nope", "1"}, out,
          err),
      2);
  EXPECT_NE(err.find("unknown argument --nope"), std::string::npos);
}

Args parsedOk(std::vector<std::string_view> args) {
  auto parsed = parseArgs(args);
  EXPECT_TRUE(std::holds_alternative<Args>(parsed)) << std::get<ArgsError>(parsed).message;
  return std::holds_alternative<Args>(parsed) ? std::get<Args>(parsed) : Args{};
}

ArgsError parsedError(std::vector<std::string_view> args) {
  auto parsed = parseArgs(args);
  EXPECT_TRUE(std::holds_alternative<ArgsError>(parsed));
  return std::holds_alternative<ArgsError>(parsed) ? std::get<ArgsError>(parsed) : ArgsError{};
}

TEST(PlanArgs, MeasureTakesThePlaceOfPerPartition) {
  // given --measure, --per-partition and --message-size may go
  Args a = parsedOk({"--throughput", "20k", "--measure", "user-events"});
  ASSERT_TRUE(a.measure);
  EXPECT_EQ(a.measure->pipeline, "user-events");
  EXPECT_EQ(a.measure->config, "/etc/kpipe/kpipe.yaml");  // as the unit and image run kpipe
  EXPECT_FALSE(a.measure->sample);
  EXPECT_DOUBLE_EQ(a.measure->seconds, 5);
  EXPECT_EQ(a.measure->keys, 10'000u);
  EXPECT_FALSE(a.measure->use_store);  // a memory store unless asked
  EXPECT_FALSE(a.measure->allow_http);
  EXPECT_FALSE(a.message_size_given);
  EXPECT_FALSE(a.latency_given);
  EXPECT_DOUBLE_EQ(a.inputs.throughput, 20'000);

  a = parsedOk(
      {"--measure",    "p",   "--config",       "c/kpipe.yaml", "--sample",    "s.jsonl",
       "--seconds",    "2.5", "--keys",         "1M",           "--use-store", "--allow-http",
       "--throughput", "1k",  "--message-size", "1KiB",         "--latency",   "20ms",
       "--brokers",    "6",   "--json"});
  ASSERT_TRUE(a.measure);
  EXPECT_EQ(a.measure->config, "c/kpipe.yaml");
  EXPECT_EQ(a.measure->sample, "s.jsonl");
  EXPECT_DOUBLE_EQ(a.measure->seconds, 2.5);
  EXPECT_EQ(a.measure->keys, 1'000'000u);
  EXPECT_TRUE(a.measure->use_store);
  EXPECT_TRUE(a.measure->allow_http);
  EXPECT_TRUE(a.message_size_given);
  EXPECT_TRUE(a.latency_given);
  EXPECT_TRUE(a.json);
  EXPECT_EQ(a.inputs.brokers, 6);
  EXPECT_EQ(parsedOk({"--throughput", "1", "--measure", "p", "--keys", "sample"}).measure->keys,
            0u);
  // --seconds: a number, or a duration as --latency takes it
  for (const auto& [given, seconds] : std::vector<std::pair<std::string_view, double>>{
           {"5", 5}, {"5s", 5}, {"500ms", 0.5}, {"2m", 120}, {"0.75", 0.75}}) {
    EXPECT_DOUBLE_EQ(
        parsedOk({"--throughput", "1", "--measure", "p", "--seconds", given}).measure->seconds,
        seconds)
        << given;
  }
  EXPECT_EQ(parsedError({"--throughput", "1", "--measure", "p", "--seconds", "11m"}).message,
            "--seconds 11m: expected seconds or a duration (5, 5s, 500ms), 0.5 s to 10 min");
  // without --measure, nothing changes
  EXPECT_FALSE(
      parsedOk({"--throughput", "1", "--message-size", "1", "--per-partition", "1"}).measure);
}

TEST(PlanArgs, MeasureFlagsThatDoNotFit) {
  ArgsError e = parsedError({"--throughput", "1", "--measure", "p", "--per-partition", "5"});
  EXPECT_EQ(e.message, "--per-partition and --measure: give one (--measure measures it)");
  e = parsedError(
      {"--throughput", "1", "--message-size", "1", "--per-partition", "1", "--sample", "s.jsonl"});
  EXPECT_EQ(e.message, "--sample goes with --measure PIPELINE");
  EXPECT_TRUE(e.usage);
  e = parsedError(
      {"--throughput", "1", "--message-size", "1", "--per-partition", "1", "--use-store"});
  EXPECT_EQ(e.message, "--use-store goes with --measure PIPELINE");
  e = parsedError({"--measure", "p"});  // the target is still needed
  EXPECT_TRUE(e.usage);
  EXPECT_EQ(e.message, "");
  EXPECT_EQ(parsedError({"--throughput", "1", "--measure", "p", "--seconds", "0"}).message,
            "--seconds 0: expected seconds or a duration (5, 5s, 500ms), 0.5 s to 10 min");
  EXPECT_EQ(parsedError({"--throughput", "1", "--measure", "p", "--keys", "lots"}).message,
            "--keys lots: expected a number of distinct keys (10000, 1M), or \"sample\"");
  EXPECT_EQ(parsedError({"--throughput", "1", "--measure", "--json"}).message,
            "--measure --json: expected a pipeline name");
  EXPECT_EQ(parsedError({"--throughput", "1", "--measure"}).message, "--measure needs a value");
  e = parsedError({"--throughput", "1", "stray"});
  EXPECT_EQ(e.message, "unexpected argument stray");
  EXPECT_TRUE(e.usage);
}

std::string sourceDir() {
  const char* dir = std::getenv("KPIPE_SOURCE_DIR");
  return dir != nullptr ? dir : KPIPE_SOURCE_DIR_DEFAULT;
}

// A config directory with one pipeline and no test files.
class MeasureErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kpipe-plan-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / "pipelines");
    std::ofstream(dir_ / "kpipe.yaml") << "pipelines: pipelines/\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void pipeline(const std::string& text) { std::ofstream(dir_ / "pipelines" / "p.yaml") << text; }
  std::string config() const { return (dir_ / "kpipe.yaml").string(); }

  std::filesystem::path dir_;
};

TEST_F(MeasureErrors, SayWhatToDo) {
  std::string out, err;
  // no config
  EXPECT_EQ(run({"--throughput", "1k", "--measure", "p", "--config", "/nonexistent/kpipe.yaml"},
                out, err),
            1);
  EXPECT_NE(err.find("no config at /nonexistent/kpipe.yaml: give it with --config PATH"),
            std::string::npos)
      << err;
  // an unknown pipeline: the config's pipelines are named
  const std::string demo = sourceDir() + "/config/kpipe.yaml";
  EXPECT_EQ(run({"--throughput", "1k", "--measure", "nope", "--config", demo}, out, err), 1);
  EXPECT_NE(err.find("no pipeline \"nope\" in " + demo + " (pipelines: payments, user-events)"),
            std::string::npos)
      << err;
  // no samples: no --sample, and no test cases for it
  pipeline("name: p\ninput: {topic: t, group: g}\nkey: /k\noutput: {topic: o}\n");
  EXPECT_EQ(run({"--throughput", "1k", "--measure", "p", "--config", config()}, out, err), 1);
  EXPECT_NE(err.find("no samples for pipeline p: pass --sample FILE"), std::string::npos) << err;
  // a sample file that is not there
  EXPECT_EQ(run({"--throughput", "1k", "--measure", "p", "--config", config(), "--sample",
                 (dir_ / "missing.jsonl").string()},
                out, err),
            1);
  EXPECT_NE(err.find("missing.jsonl: cannot read the sample file"), std::string::npos) << err;
  // an HTTP output without --allow-http
  pipeline(
      "name: p\ninput: {topic: t, group: g}\nkey: /k\n"
      "output: {http: {url: \"http://127.0.0.1:9/x?token=abc\"}}\n");
  EXPECT_EQ(run({"--throughput", "1k", "--measure", "p", "--config", config()}, out, err), 1);
  EXPECT_NE(err.find("pipeline p writes its output to http://127.0.0.1:9/x?token=***"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("Pass --allow-http"), std::string::npos) << err;
  // a config with errors: as `kpipe check` reports them
  pipeline("name: p\ninput: {topic: t}\n");
  EXPECT_EQ(run({"--throughput", "1k", "--measure", "p", "--config", config()}, out, err), 1);
  EXPECT_NE(err.find("config error"), std::string::npos) << err;
  EXPECT_NE(err.find("p.yaml:"), std::string::npos) << err;
  // the plan's own checks come before any measuring
  EXPECT_EQ(run({"--throughput", "1k", "--measure", "p", "--config", config(), "--brokers", "1"},
                out, err),
            2);
  EXPECT_NE(err.find("--replication-factor"), std::string::npos) << err;
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace kpipe::plan
