// PartitionWatch against the embedded (mock) cluster: real metadata requests. The mock
// cluster of librdkafka 2.0.2 cannot add partitions to a topic (no CreatePartitions handler,
// no mock API for it), so a change is tested on PartitionCounts, the part that decides.

#include "daemon/kafka/partition_watch.h"

#include "daemon/kafka/embedded_broker.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <map>

namespace kpipe::kafka {
namespace {

using namespace std::chrono_literals;

KafkaPtr producerFor(const std::string& bootstrap) {
  Properties props{{"bootstrap.servers", bootstrap}, {"allow.auto.create.topics", "false"}};
  auto conf = makeConf({&props});
  auto client = makeClient(RD_KAFKA_PRODUCER, std::move(std::get<ConfPtr>(conf)));
  return std::move(std::get<KafkaPtr>(client));
}

TEST(PartitionWatchTest, ReadsEveryTopicsPartitionCountFromTheCluster) {
  // given: a cluster with topics of 3 and 5 partitions
  auto started = EmbeddedBroker::start(1);
  auto& broker = std::get<std::unique_ptr<EmbeddedBroker>>(started);
  ASSERT_EQ(broker->createTopic("three", 3), std::nullopt);
  ASSERT_EQ(broker->createTopic("five", 5), std::nullopt);
  KafkaPtr producer = producerFor(broker->bootstrap());
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);  // the readings come from another thread

  // when: the watch reads twice (50 ms apart)
  std::vector<std::map<std::string, int>> rounds;
  PartitionWatch watch(io, producer.get(), {"three", "five", "three"}, 50ms,
                       [&](const std::vector<TopicReading>& readings) {
                         std::map<std::string, int> round;
                         for (const auto& r : readings) round[r.topic] = r.partitions;
                         rounds.push_back(round);
                         if (rounds.size() == 2) io.stop();
                       });
  io.run_for(20s);

  // then: each topic once per round, with its partition count
  ASSERT_EQ(rounds.size(), 2u);
  std::map<std::string, int> want{{"five", 5}, {"three", 3}};
  EXPECT_EQ(rounds[0], want);
  EXPECT_EQ(rounds[1], want);
}

TEST(PartitionWatchTest, ReportsATopicItCannotRead) {
  // The mock cluster creates any topic asked about; an injected topic error stands for one
  // that does not exist on a real cluster.
  auto started = EmbeddedBroker::start(1);
  auto& broker = std::get<std::unique_ptr<EmbeddedBroker>>(started);
  rd_kafka_mock_topic_set_error(broker->cluster(), "missing",
                                RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  KafkaPtr producer = producerFor(broker->bootstrap());
  boost::asio::io_context io;
  PartitionWatch watch(io, producer.get(), {"missing"}, 1h, [](const auto&) {});

  auto readings = watch.readNow();

  ASSERT_EQ(readings.size(), 1u);
  EXPECT_EQ(readings[0].topic, "missing");
  EXPECT_EQ(readings[0].partitions, -1);
  EXPECT_THAT(readings[0].error, ::testing::HasSubstr("nknown"));
}

TEST(PartitionCountsTest, TheFirstReadingIsNotAChangeADifferentOneIs) {
  PartitionCounts counts;
  EXPECT_EQ(counts.observe("t", 4), std::nullopt);
  EXPECT_EQ(counts.observe("t", 4), std::nullopt);
  EXPECT_EQ(counts.observe("u", 8), std::nullopt);
  EXPECT_EQ(counts.observe("t", 6), 4);
  EXPECT_EQ(counts.observe("t", 6), std::nullopt);
  EXPECT_EQ(counts.observe("t", 4), 6);  // a shrink (topic re-created) is a change too
}

}  // namespace
}  // namespace kpipe::kafka
