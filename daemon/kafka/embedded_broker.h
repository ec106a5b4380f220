#pragma once
// An in-process Kafka cluster for development, demos and tests: librdkafka's mock cluster.
//
// Not durable, and it keeps only a few MB per partition (older data is silently dropped). It
// answers a subset of the protocol: produce, fetch, consumer groups and offsets work; topics
// are created here (createTopic) or auto-created with 4 partitions on first use.
// Its brokers listen on 127.0.0.1 ports chosen by the kernel; bootstrap() names them.
//
// Thread-safe as librdkafka's mock API is (it posts to the cluster's own thread).

#include "daemon/kafka/handle.h"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

struct rd_kafka_mock_cluster_s;

namespace kpipe::kafka {

class EmbeddedBroker {
 public:
  static std::variant<std::unique_ptr<EmbeddedBroker>, std::string> start(int brokers);
  ~EmbeddedBroker();
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  const std::string& bootstrap() const { return bootstrap_; }
  // Creates `name` unless it exists. Returns an error message on failure.
  std::optional<std::string> createTopic(const std::string& name, int partitions);
  // For fault injection in tests (rd_kafka_mock_* functions).
  rd_kafka_mock_cluster_s* cluster() const { return cluster_; }

  // Applies one fault-injection command of the mock cluster; returns an error message for a
  // command it does not understand. Commands (APIs and errors by name or number):
  //   errors API COUNT ERROR   the next COUNT requests of API fail with ERROR
  //                            (e.g. "errors Produce 500 NOT_ENOUGH_REPLICAS")
  //   clear API                drop the errors still queued for API
  //   down BROKER | up BROKER  take a broker (id from 1) down or back up
  //   rtt BROKER MS            add MS milliseconds of round-trip time to a broker
  //   leader TOPIC PARTITION BROKER   move a partition's leadership to a broker
  //   coordinator group|transaction KEY BROKER   make a broker the coordinator of a group id
  //                                              or transactional id
  std::optional<std::string> applyFault(std::string_view command);

 private:
  EmbeddedBroker(KafkaPtr host, rd_kafka_mock_cluster_s* cluster);
  KafkaPtr host_;  // the handle the cluster lives in; destroyed after the cluster
  rd_kafka_mock_cluster_s* cluster_;
  std::string bootstrap_;
};

}  // namespace kpipe::kafka
