// plan.h: the arithmetic, the warnings and the command line of `kpipe plan`.
#include "daemon/plan/plan.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

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

}  // namespace
}  // namespace kpipe::plan
