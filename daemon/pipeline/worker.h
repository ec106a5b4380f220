#pragma once
// One running pipeline: a consumer-group member that routes every input message to the output,
// error or audit topic, and commits an input offset only after the effects of that message and
// of every earlier message of its partition are acknowledged (at-least-once).
//
// Data flow (see README.md in this directory):
//   partition queue ──wakeup──► route (router.h) ──► KeyScheduler (its key's turn) ──► dedup
//   reserve (store answer, possibly later) ──► produce (no copy: the consumed message is kept
//   until its delivery report) ──dr──► dedup confirm ──► CommitTracker::complete, start the
//   key's next message ──► offset store ──► librdkafka auto-commit (every second, and of
//   released partitions on revoke and close).
//
// Threading: everything runs on the io_context thread given at construction, woken by
// librdkafka through QueueWakeup and by the dedup store's answers; nothing polls (the
// partition-count watch and remote stores have threads of their own). Two documented blocking
// points: a revoke flushes the producer (up to revoke_timeout) so that finished work is committed
// before the partitions move, and stop() closes the consumer (leave group) once in-flight work is
// done.
//
// Lifecycle: create() → start() → stop(done) → destroy after done ran.

#include "daemon/config/spec.h"
#include "daemon/dedup/store.h"
#include "daemon/kafka/handle.h"
#include "daemon/kafka/partition_watch.h"
#include "daemon/kafka/queue_wakeup.h"
#include "daemon/observe/consumer_status.h"
#include "daemon/observe/metrics.h"
#include "daemon/pipeline/commit_tracker.h"
#include "daemon/pipeline/key_scheduler.h"
#include "daemon/pipeline/router.h"
#include "daemon/sinks/sink.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace kpipe::pipeline {

// What /status and the status page show of one pipeline (a snapshot, taken on the io thread).
struct PartitionStatus {
  int32_t partition = 0;
  std::string status;      // Burrow's: ok, warn, stall, stop, rewind
  int64_t committed = -1;  // next offset to consume as stored; -1 before the first message
  int64_t lag_messages = 0;
  double lag_seconds = 0;
  std::optional<double> retention_headroom_seconds;
  size_t pending = 0;  // consumed, not done (running and waiting for their key)
  bool paused = false;
};

struct PipelineStatus {
  std::string name, input_topic, group, output;  // output: a topic or the HTTP sink's URL
  std::string state;   // running, stopping, unhealthy, or joining (no assignment yet)
  std::string status;  // Burrow's group status: ok, warn, error
  std::string why;     // why not ready, when it is not
  std::string store;   // dedup store name, empty without dedup
  double ok = 0, invalid = 0, duplicate = 0, error = 0;  // kpipe_messages_total
  size_t inflight = 0;
  size_t blocked = 0;  // messages waiting for a retry after a blocking failure
  double oldest_blocked_seconds = 0;
  std::string last_error;        // "stage: reason (partition P offset O)", empty if none yet
  int64_t last_error_at_ms = 0;  // wall clock
  std::vector<PartitionStatus> partitions;
};

struct WorkerOptions {
  std::string bootstrap;
  kafka::Properties properties;           // kafka.properties: both clients
  kafka::Properties consumer_properties;  // kafka.consumer_properties, applied after
  kafka::Properties producer_properties;  // kafka.producer_properties, applied after
  std::chrono::milliseconds drain_timeout = std::chrono::seconds(30);
  // How often the partition counts of the input and output topics are read from the cluster.
  std::chrono::milliseconds partition_watch_interval = std::chrono::seconds(30);
};

class Worker {
 public:
  static std::variant<std::unique_ptr<Worker>, std::string> create(
      boost::asio::io_context& io, const config::PipelineSpec& spec, const WorkerOptions& options,
      dedup::Store* store, std::unique_ptr<sinks::Sink> sink, observe::Metrics& metrics);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  // Stops fetching, lets in-flight work finish (up to drain_timeout), commits, leaves the
  // group, then calls `done` on the io_context thread.
  void stop(std::function<void()> done);

  // Whether reconfigure() can take `spec`: the consumer side (name, input topic, group,
  // bootstrap, kafka properties) is the same.
  bool canReconfigure(const config::PipelineSpec& spec, const WorkerOptions& options) const;
  // A reload's change of this pipeline without leaving the consumer group (no rebalance, no
  // wait for the coordinator): stops reading, lets in-flight work finish under the old
  // definition (up to drain_timeout) and stores its offsets, then swaps in the new router,
  // producer, sink and dedup session and reads on from where it stopped. `done` gets "" on
  // success. On an error the old definition runs on; after a drain timeout the worker has
  // stopped instead, as stop() does (the caller starts a new one).
  void reconfigure(const config::PipelineSpec& spec, const WorkerOptions& options,
                   dedup::Store* store, std::unique_ptr<sinks::Sink> sink,
                   std::function<void(std::string error)> done);

  const std::string& name() const { return spec_.name; }
  // Stopped (stop() finished, or a reconfigure() fell back to stopping): only destruction left.
  bool closed() const { return closed_; }
  // Empty while healthy; otherwise why this pipeline cannot make progress without a restart.
  const std::string& healthError() const { return fatal_error_; }
  // Empty when ready to take traffic (it has joined its consumer group and got an assignment,
  // possibly empty, and is healthy and not stopping); otherwise why not.
  std::string readiness() const;
  PipelineStatus status() const;

 private:
  struct InFlight;
  struct PartitionState;
  Worker(boost::asio::io_context& io, const config::PipelineSpec& spec,
         const WorkerOptions& options, observe::Metrics& metrics);

  static void onDeliveryReport(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);
  static void onRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque);

  struct Reconfigure {
    config::PipelineSpec spec;
    WorkerOptions options;
    dedup::Store* store;
    std::unique_ptr<sinks::Sink> sink;
    std::unique_ptr<Router> router;
    std::function<void(std::string error)> done;
  };
  std::optional<std::string> openProducer();
  void openSinkMetrics();
  void armDrainDeadline(std::function<void()> expired);
  void stopInstead(std::function<void(std::string error)> done, std::string error);
  void closeProducer();
  void startPartitionWatch();
  void finishReconfigure();
  void onConsumerReady();
  void onPartitionReady(PartitionState& state);
  void onProducerReady();
  void process(rd_kafka_message_t* message);
  void start(InFlight* f);
  static std::string positionOf(const InFlight* f);
  std::string_view ownerOf(const InFlight* f, std::array<char, 32>& buffer) const;
  void reserve(InFlight* f);
  void onReserved(InFlight* f, const dedup::ReserveReply& reply);
  void effectDone(InFlight* f);
  void confirm(InFlight* f);
  void onConfirmed(InFlight* f, std::string_view error);
  void releaseReservation(InFlight* f);
  void startNext(PartitionState& state, uint64_t key);
  void discardWaiting(PartitionState& state);
  void updatePause(PartitionState& state);
  // Returns false when the producer queue is full (the message waits in blocked_).
  bool produce(InFlight* f);
  void delivered(InFlight* f, rd_kafka_resp_err_t err);
  void sendToSink(InFlight* f);
  void onSinkResult(InFlight* f, const sinks::SendResult& result);
  void blockingFailure(InFlight* f, std::string_view failed_stage, const std::string& reason);
  prometheus::Counter& errorCounter(std::string_view cls, std::string_view stage_name);
  void observeSink(const InFlight* f);
  void complete(InFlight* f);
  void retryLater(InFlight* f);
  void discard(InFlight* f);
  PartitionState* ownPartition(const InFlight* f);
  void assign(rd_kafka_topic_partition_list_t* partitions);
  // `partitions` null: all of them.
  void revoke(rd_kafka_topic_partition_list_t* partitions, bool lost);
  void block(InFlight* f);
  void storeOffsets();
  void updateLag();
  void logProgress();
  void scheduleLagUpdate();
  void maybeFinishStop();
  void finishStop();
  InFlight* acquire();
  void recycle(InFlight* f);
  void logRateLimited(const char* what, const std::string& detail);
  void noteError(const InFlight* f, std::string_view stage_name, std::string_view reason);
  void onPartitionCounts(const std::vector<kafka::TopicReading>& readings);
  void onInputRetention(const kafka::RetentionReading& reading);
  void noteRewind(int32_t partition, int64_t position);

  boost::asio::io_context& io_;
  config::PipelineSpec spec_;
  WorkerOptions options_;
  std::string store_name_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<sinks::Sink> sink_;  // output.http; null: the output is a Kafka topic
  prometheus::Gauge* sink_queue_ = nullptr;
  prometheus::Histogram* sink_seconds_ = nullptr;
  std::array<prometheus::Gauge*, 6> consumer_status_{};  // kpipe_consumer_status, per status
  std::map<std::pair<std::string_view, std::string_view>, prometheus::Counter*> error_counters_;
  observe::Metrics& metrics_;
  observe::PipelineStats stats_;
  // Per-message latencies, added to stats_'s histograms once per turn (publishTurn()).
  observe::HistogramBatch processing_seconds_{stats_.processing, observe::kLatencyBuckets};
  observe::HistogramBatch end_to_end_seconds_{stats_.end_to_end, observe::kEndToEndBuckets};

  // Destruction order matters (reverse of declaration): wakeups, then queues and topic handles,
  // then the clients they belong to.
  kafka::KafkaPtr producer_;
  kafka::KafkaPtr consumer_;
  kafka::TopicPtr output_topic_;
  kafka::TopicPtr error_topic_;
  kafka::TopicPtr audit_topic_;
  kafka::TopicPtr input_topic_;  // consumer-side handle, for the legacy per-partition offset store
  kafka::QueuePtr consumer_queue_;
  kafka::QueuePtr producer_queue_;
  std::unique_ptr<kafka::QueueWakeup> consumer_wakeup_;
  std::unique_ptr<kafka::QueueWakeup> producer_wakeup_;
  std::unique_ptr<kafka::PartitionWatch> partition_watch_;  // uses consumer_
  kafka::PartitionCounts partition_counts_;
  std::map<std::string, prometheus::Gauge*> topic_partitions_;
  std::map<std::string, prometheus::Counter*> partition_count_changes_;
  std::optional<int64_t> retention_ms_;  // of the input topic; -1: forever
  bool retention_reported_ = false;
  std::string last_error_;
  int64_t last_error_at_ms_ = 0;
  std::optional<int64_t> broker_retention_ms_;  // its last answer to DescribeConfigs
  std::map<int32_t, int64_t> last_positions_;   // commit position per partition, across assignments
  std::map<int32_t, prometheus::Counter*> rewinds_;
  observe::ConsumerStatus pipeline_status_ = observe::ConsumerStatus::Ok;

  std::unordered_map<int32_t, std::unique_ptr<PartitionState>> partitions_;
  std::vector<int32_t> dirty_partitions_;
  std::deque<InFlight*> blocked_;  // routed, waiting for room in the producer queue (in order)
  std::vector<std::unique_ptr<InFlight>> pool_;
  std::vector<InFlight*> free_;
  // The clock of the current batch of work (a partition's turn, a poll of delivery reports):
  // read once per batch instead of two or three times per message (clock_gettime was 2.4% of
  // the CPU in the end-to-end benchmark). Set by TurnClock for the length of one handler, so
  // it is never older than that handler's turn (at most kTurnBudget for a partition's turn).
  struct TurnTime {
    std::chrono::steady_clock::time_point steady;
    int64_t wall_ms;  // system clock, for the end-to-end latency against record timestamps
  };
  class TurnClock;
  std::optional<TurnTime> turn_time_;
  TurnTime now() const;
  void publishTurn();
  std::vector<InFlight*> started_;  // released by the scheduler, to start (startNext())
  bool starting_ = false;           // inside startNext()'s loop
  uint64_t generation_ = 0;
  size_t inflight_ = 0;

  boost::asio::steady_timer lag_timer_;
  boost::asio::steady_timer stop_deadline_;
  bool stopping_ = false;
  std::unique_ptr<Reconfigure> reconfigure_;  // set while draining for reconfigure()
  bool joined_ = false;                       // a first assignment arrived
  std::string fatal_error_;                   // set once the producer failed fatally
  bool closed_ = false;
  std::function<void()> on_stopped_;
  std::chrono::steady_clock::time_point last_warning_{};
  int ticks_ = 0;
  double logged_ok_ = 0, logged_invalid_ = 0, logged_duplicate_ = 0;
  uint64_t suppressed_warnings_ = 0;
  std::shared_ptr<char> alive_ = std::make_shared<char>();
  // Last, so that it goes first: no store answer arrives for a pooled message that is gone.
  std::unique_ptr<dedup::Session> session_;
};

}  // namespace kpipe::pipeline
