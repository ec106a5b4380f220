#pragma once
// Watches the partition counts of a pipeline's topics (DESIGN.md §1.2: adding partitions to a
// topic moves keys to other partitions, so key order across the change is broken) and their
// retention.ms (DESIGN.md §1.10: lag must stay well within it, or data is deleted unread).
//
// rd_kafka_metadata and DescribeConfigs are blocking broker round trips, so a background thread
// asks the cluster every `interval` and posts each round of readings to the io_context.
// PartitionCounts, the "did it change?" part, is separate and pure.
//
// Lifecycle: construct (the thread starts at once), destroy to stop: the destructor joins the
// thread (at most one metadata timeout) and readings not yet delivered are dropped. `client`
// must outlive the watch.

#include "daemon/kafka/handle.h"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kpipe::kafka {

struct TopicReading {
  std::string topic;
  int partitions = -1;  // -1 when it could not be read; `error` says why
  std::string error;
};

struct RetentionReading {
  std::string topic;
  // retention.ms (-1: forever); unset when it could not be read (`error` says why: the
  // embedded broker, for one, does not answer DescribeConfigs).
  std::optional<int64_t> retention_ms;
  std::string error;
};

class PartitionWatch {
 public:
  using Callback = std::function<void(const std::vector<TopicReading>&)>;
  using RetentionCallback = std::function<void(const RetentionReading&)>;

  // Retention is read for `retention_topic` only (empty: none), after each round of partition
  // counts, which it does not delay; a broker that does not answer DescribeConfigs is asked
  // again only every tenth round.
  PartitionWatch(boost::asio::io_context& io, rd_kafka_t* client, std::vector<std::string> topics,
                 std::chrono::milliseconds interval, Callback on_readings,
                 std::string retention_topic = {}, RetentionCallback on_retention = {});
  ~PartitionWatch();
  PartitionWatch(const PartitionWatch&) = delete;
  PartitionWatch& operator=(const PartitionWatch&) = delete;

  // One round of readings now, blocking (for `kpipe check`-like callers and tests).
  std::vector<TopicReading> readNow();

 private:
  void run();
  RetentionReading readRetention();

  boost::asio::io_context& io_;
  rd_kafka_t* client_;
  std::vector<std::pair<std::string, TopicPtr>> topics_;
  std::chrono::milliseconds interval_;
  Callback on_readings_;
  std::string retention_topic_;
  RetentionCallback on_retention_;
  int retention_skip_ = 0;  // rounds left before DescribeConfigs is tried again
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // posted readings check it
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;  // last: started after everything it uses
};

// The last partition count seen per topic.
class PartitionCounts {
 public:
  // Records `partitions` for `topic`; returns the previous count when it differs from it
  // (the first reading of a topic is not a change).
  std::optional<int> observe(const std::string& topic, int partitions);

 private:
  std::map<std::string, int> counts_;
};

}  // namespace kpipe::kafka
