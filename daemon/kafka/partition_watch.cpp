#include "daemon/kafka/partition_watch.h"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace kpipe::kafka {

PartitionWatch::PartitionWatch(boost::asio::io_context& io, rd_kafka_t* client,
                               std::vector<std::string> topics, std::chrono::milliseconds interval,
                               Callback on_readings)
    : io_(io), client_(client), interval_(interval), on_readings_(std::move(on_readings)) {
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

std::vector<PartitionCountReading> PartitionWatch::readNow() {
  // Bounded so that a stop waits at most this long for a broker that does not answer.
  const int timeout_ms = static_cast<int>(std::clamp<int64_t>(interval_.count(), 100, 5000));
  std::vector<PartitionCountReading> readings;
  for (const auto& [name, handle] : topics_) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;  // a stop waits for at most one metadata request
    }
    PartitionCountReading reading{name, -1, {}};
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

void PartitionWatch::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    auto readings = readNow();
    boost::asio::post(io_,
                      [this, readings = std::move(readings), alive = std::weak_ptr<char>(alive_)] {
                        if (!alive.expired()) on_readings_(readings);
                      });
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
