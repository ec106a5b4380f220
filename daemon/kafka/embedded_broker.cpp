#include "daemon/kafka/embedded_broker.h"

#include <librdkafka/rdkafka_mock.h>

#include <charconv>
#include <map>
#include <sstream>
#include <vector>

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

namespace {

// Kafka protocol API keys the fault commands name (the ones the mock cluster answers).
const std::map<std::string, int16_t, std::less<>> kApiKeys = {
    {"Produce", 0},      {"Fetch", 1},       {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8}, {"OffsetFetch", 9}, {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},   {"LeaveGroup", 13}, {"SyncGroup", 14},       {"InitProducerId", 22}};

std::optional<int64_t> number(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<int16_t> apiKey(std::string_view text) {
  if (auto it = kApiKeys.find(text); it != kApiKeys.end()) return it->second;
  if (auto n = number(text)) return static_cast<int16_t>(*n);
  return std::nullopt;
}

// An error by its librdkafka name (NOT_ENOUGH_REPLICAS, without the RD_KAFKA_RESP_ERR_ prefix).
std::optional<rd_kafka_resp_err_t> errorCode(std::string_view text) {
  if (auto n = number(text)) return static_cast<rd_kafka_resp_err_t>(*n);
  const rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  for (size_t i = 0; i < count; ++i) {
    if (descs[i].name != nullptr && text == descs[i].name) return descs[i].code;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> EmbeddedBroker::applyFault(std::string_view command) {
  std::vector<std::string> words;
  std::istringstream in{std::string(command)};
  for (std::string word; in >> word;) words.push_back(word);
  auto usage = [&] { return "unknown fault command \"" + std::string(command) + "\""; };
  if (words.size() == 4 && words[0] == "errors") {
    auto api = apiKey(words[1]);
    auto count = number(words[2]);
    auto error = errorCode(words[3]);
    if (!api) return "unknown API \"" + words[1] + "\" (e.g. Produce, Fetch, OffsetCommit)";
    if (!count || *count < 0) return "count \"" + words[2] + "\" is not a number";
    if (!error) {
      return "unknown error \"" + words[3] +
             "\" (librdkafka's name without RD_KAFKA_RESP_ERR_, e.g. NOT_ENOUGH_REPLICAS)";
    }
    std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(*count), *error);
    rd_kafka_mock_push_request_errors_array(cluster_, *api, errors.size(), errors.data());
    return std::nullopt;
  }
  if (words.size() == 2 && words[0] == "clear") {
    auto api = apiKey(words[1]);
    if (!api) return usage();
    rd_kafka_mock_clear_request_errors(cluster_, *api);
    return std::nullopt;
  }
  if (words.size() == 2 && (words[0] == "down" || words[0] == "up")) {
    auto id = number(words[1]);
    if (!id) return usage();
    auto err = words[0] == "down"
                   ? rd_kafka_mock_broker_set_down(cluster_, static_cast<int32_t>(*id))
                   : rd_kafka_mock_broker_set_up(cluster_, static_cast<int32_t>(*id));
    if (err) return std::string(rd_kafka_err2str(err));
    return std::nullopt;
  }
  if (words.size() == 4 && words[0] == "leader") {
    auto partition = number(words[2]);
    auto id = number(words[3]);
    if (!partition || !id) return usage();
    if (auto err = rd_kafka_mock_partition_set_leader(cluster_, words[1].c_str(),
                                                      static_cast<int32_t>(*partition),
                                                      static_cast<int32_t>(*id))) {
      return std::string(rd_kafka_err2str(err));
    }
    return std::nullopt;
  }
  if (words.size() == 4 && words[0] == "coordinator" &&
      (words[1] == "group" || words[1] == "transaction")) {
    auto id = number(words[3]);
    if (!id) return usage();
    if (auto err = rd_kafka_mock_coordinator_set(cluster_, words[1].c_str(), words[2].c_str(),
                                                 static_cast<int32_t>(*id))) {
      return std::string(rd_kafka_err2str(err));
    }
    return std::nullopt;
  }
  if (words.size() == 3 && words[0] == "rtt") {
    auto id = number(words[1]);
    auto ms = number(words[2]);
    if (!id || !ms) return usage();
    if (auto err = rd_kafka_mock_broker_set_rtt(cluster_, static_cast<int32_t>(*id),
                                                static_cast<int>(*ms))) {
      return std::string(rd_kafka_err2str(err));
    }
    return std::nullopt;
  }
  return usage();
}

std::optional<std::string> EmbeddedBroker::createTopic(const std::string& name, int partitions) {
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    return std::nullopt;
  }
  return "cannot create topic " + name + ": " + rd_kafka_err2str(err);
}

}  // namespace kpipe::kafka
