#include "daemon/kafka/embedded_broker.h"

#include <librdkafka/rdkafka_mock.h>

namespace kpipe::kafka {

std::variant<std::unique_ptr<EmbeddedBroker>, std::string> EmbeddedBroker::start(int brokers) {
  // The mock cluster needs a host client; a producer that never produces is the cheapest.
  Properties props{{"client.id", "kpipe-embedded-broker"}, {"log_level", "3"}};
  auto conf = makeConf({&props});
  if (auto* error = std::get_if<std::string>(&conf)) return *error;
  auto host = makeClient(RD_KAFKA_PRODUCER, std::move(std::get<ConfPtr>(conf)));
  if (auto* error = std::get_if<std::string>(&host)) return *error;
  auto& rk = std::get<KafkaPtr>(host);
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk.get(), brokers);
  if (cluster == nullptr) return std::string("cannot start the embedded broker");
  return std::unique_ptr<EmbeddedBroker>(new EmbeddedBroker(std::move(rk), cluster));
}

EmbeddedBroker::EmbeddedBroker(KafkaPtr host, rd_kafka_mock_cluster_s* cluster)
    : host_(std::move(host)),
      cluster_(cluster),
      bootstrap_(rd_kafka_mock_cluster_bootstraps(cluster)) {}

EmbeddedBroker::~EmbeddedBroker() { rd_kafka_mock_cluster_destroy(cluster_); }

std::optional<std::string> EmbeddedBroker::createTopic(const std::string& name, int partitions) {
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    return std::nullopt;
  }
  return "cannot create topic " + name + ": " + rd_kafka_err2str(err);
}

}  // namespace kpipe::kafka
