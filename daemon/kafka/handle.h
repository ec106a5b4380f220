#pragma once
// RAII for librdkafka handles: a unique_ptr with a deleter per handle type.
//
// Ownership rules worth repeating from librdkafka's docs: rd_kafka_new() takes the conf on
// success (release() it then); rd_kafka_producev() takes the headers on success. Messages and
// queues must be destroyed before the rd_kafka_t they came from: declare them after it.

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>
#include <variant>

namespace kpipe::kafka {

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
struct MessageDeleter {
  void operator()(rd_kafka_message_t* message) const { rd_kafka_message_destroy(message); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* queue) const { rd_kafka_queue_destroy(queue); }
};
struct TopicDeleter {
  void operator()(rd_kafka_topic_t* topic) const { rd_kafka_topic_destroy(topic); }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
struct HeadersDeleter {
  void operator()(rd_kafka_headers_t* headers) const { rd_kafka_headers_destroy(headers); }
};

using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;

using Properties = std::map<std::string, std::string>;

// A conf with `properties` applied in order; later maps override earlier ones. Returns the
// librdkafka message naming the offending property on failure.
std::variant<ConfPtr, std::string> makeConf(std::initializer_list<const Properties*> properties);

// Creates a client; takes the conf (on success and on failure).
std::variant<KafkaPtr, std::string> makeClient(rd_kafka_type_t type, ConfPtr conf);

// Routes librdkafka's own log lines into kpipe's structured log.
void setLogger(rd_kafka_conf_t* conf, const std::string& client_name);

}  // namespace kpipe::kafka
