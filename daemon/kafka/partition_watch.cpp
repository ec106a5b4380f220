#include "daemon/kafka/partition_watch.h"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstdlib>
#include <string_view>

namespace kpipe::kafka {

PartitionWatch::PartitionWatch(boost::asio::io_context& io, rd_kafka_t* client,
                               std::vector<std::string> topics, std::chrono::milliseconds interval,
                               Callback on_readings, std::string retention_topic,
                               RetentionCallback on_retention)
    : io_(io),
      client_(client),
      interval_(interval),
      on_readings_(std::move(on_readings)),
      retention_topic_(std::move(retention_topic)),
      on_retention_(std::move(on_retention)) {
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
  for (auto& topic : topics) {
    TopicPtr handle(rd_kafka_topic_new(client_, topic.c_str(), nullptr));
    topics_.emplace_back(std::move(topic), std::move(handle));
  }
  thread_ = std::thread([this] { run(); });
}

PartitionWatch::~PartitionWatch() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::vector<TopicReading> PartitionWatch::readNow() {
  // Bounded so that a stop waits at most this long for a broker that does not answer.
  const int timeout_ms = static_cast<int>(std::clamp<int64_t>(interval_.count(), 100, 5000));
  std::vector<TopicReading> readings;
  for (const auto& [name, handle] : topics_) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;  // a stop waits for at most one metadata request
    }
    TopicReading reading;
    reading.topic = name;
    if (!handle) {
      reading.error = "cannot create a topic handle";
      readings.push_back(std::move(reading));
      continue;
    }
    const rd_kafka_metadata_t* metadata = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(client_, 0, handle.get(), &metadata, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      reading.error = rd_kafka_err2str(err);
    } else {
      for (int i = 0; i < metadata->topic_cnt; ++i) {
        const rd_kafka_metadata_topic_t& t = metadata->topics[i];
        if (name != t.topic) continue;
        if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          reading.error = rd_kafka_err2str(t.err);
        } else {
          reading.partitions = t.partition_cnt;
        }
      }
      if (reading.partitions < 0 && reading.error.empty()) reading.error = "not in the metadata";
    }
    if (metadata != nullptr) rd_kafka_metadata_destroy(metadata);
    readings.push_back(std::move(reading));
  }
  return readings;
}

// retention.ms of the retention topic by DescribeConfigs, waiting as long as a metadata read.
RetentionReading PartitionWatch::readRetention() {
  RetentionReading reading;
  reading.topic = retention_topic_;
  const std::string& topic = retention_topic_;
  const int timeout_ms = static_cast<int>(std::clamp<int64_t>(interval_.count(), 100, 5000));
  QueuePtr queue(rd_kafka_queue_new(client_));
  std::unique_ptr<rd_kafka_ConfigResource_t, decltype(&rd_kafka_ConfigResource_destroy)> resource(
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()),
      &rd_kafka_ConfigResource_destroy);
  std::unique_ptr<rd_kafka_AdminOptions_t, decltype(&rd_kafka_AdminOptions_destroy)> options(
      rd_kafka_AdminOptions_new(client_, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS),
      &rd_kafka_AdminOptions_destroy);
  char errstr[256];
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, errstr, sizeof errstr);
  rd_kafka_ConfigResource_t* resources[] = {resource.get()};
  rd_kafka_DescribeConfigs(client_, resources, 1, options.get(), queue.get());
  // In slices, so that a stop does not wait for a broker that does not answer.
  std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> event(
      nullptr, &rd_kafka_event_destroy);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!event && std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return reading;
    }
    event.reset(rd_kafka_queue_poll(queue.get(), 100));
  }
  if (!event) {
    reading.error = "DescribeConfigs: no answer within " + std::to_string(timeout_ms) + " ms";
    return reading;
  }
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    reading.error = std::string("DescribeConfigs: ") + rd_kafka_event_error_string(event.get());
    return reading;
  }
  const rd_kafka_DescribeConfigs_result_t* result =
      rd_kafka_event_DescribeConfigs_result(event.get());
  size_t count = 0;
  const rd_kafka_ConfigResource_t** described =
      rd_kafka_DescribeConfigs_result_resources(result, &count);
  for (size_t i = 0; i < count; ++i) {
    if (rd_kafka_ConfigResource_error(described[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      reading.error =
          std::string("DescribeConfigs: ") + rd_kafka_ConfigResource_error_string(described[i]);
      return reading;
    }
    size_t entries = 0;
    const rd_kafka_ConfigEntry_t** configs =
        rd_kafka_ConfigResource_configs(described[i], &entries);
    for (size_t j = 0; j < entries; ++j) {
      const char* name = rd_kafka_ConfigEntry_name(configs[j]);
      const char* value = rd_kafka_ConfigEntry_value(configs[j]);
      if (name == nullptr || value == nullptr || std::string_view(name) != "retention.ms") continue;
      char* end = nullptr;
      long long ms = std::strtoll(value, &end, 10);
      if (end != value && *end == '\0') {
        reading.retention_ms = ms;
        return reading;
      }
    }
  }
  reading.error = "DescribeConfigs: no retention.ms in the answer";
  return reading;
}

void PartitionWatch::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    auto readings = readNow();
    boost::asio::post(io_,
                      [this, readings = std::move(readings), alive = std::weak_ptr<char>(alive_)] {
                        if (!alive.expired()) on_readings_(readings);
                      });
    if (!retention_topic_.empty() && on_retention_) {
      if (retention_skip_ > 0) {
        --retention_skip_;
      } else {
        RetentionReading retention = readRetention();
        if (!retention.retention_ms) retention_skip_ = 9;
        boost::asio::post(
            io_, [this, retention = std::move(retention), alive = std::weak_ptr<char>(alive_)] {
              if (!alive.expired()) on_retention_(retention);
            });
      }
    }
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

std::optional<int> PartitionCounts::observe(const std::string& topic, int partitions) {
  auto [it, inserted] = counts_.emplace(topic, partitions);
  if (inserted || it->second == partitions) return std::nullopt;
  int previous = it->second;
  it->second = partitions;
  return previous;
}

}  // namespace kpipe::kafka
