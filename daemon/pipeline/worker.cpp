#include "daemon/pipeline/worker.h"

#include "daemon/observe/consumer_status.h"
#include "daemon/observe/log.h"
#include "daemon/pipeline/record_headers.h"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <random>
#include <set>

namespace kpipe::pipeline {
namespace log = observe::log;

namespace {
constexpr size_t kConsumeBatch = 256;
// Time one wake-up may spend consuming before yielding to other handlers on the io_context
// (HTTP scrapes, delivery reports, other pipelines): measured, not counted in messages,
// because a message costs 2 µs here and 500 µs in a debug sanitizer build.
constexpr auto kTurnBudget = std::chrono::milliseconds(5);
constexpr auto kLagInterval = std::chrono::seconds(1);
constexpr auto kWarningInterval = std::chrono::seconds(5);
constexpr int kProgressEveryTicks = 10;  // of kLagInterval: a progress line every 10 s
// Burrow's 10 intervals, one every 6 s at the least (samples closer together merge): the
// status looks at about the last minute, steady enough not to flap between ok and warn.
const observe::StatusWindowOptions kStatusWindow{10, std::chrono::seconds(6), 0};

void setStatus(const std::array<prometheus::Gauge*, 6>& gauges, observe::ConsumerStatus current) {
  for (size_t i = 0; i < observe::kConsumerStatuses.size(); ++i) {
    gauges[i]->Set(observe::kConsumerStatuses[i] == current ? 1 : 0);
  }
}
}  // namespace

Worker::TurnTime Worker::now() const {
  if (turn_time_) return *turn_time_;
  return {std::chrono::steady_clock::now(), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count()};
}

// Reads the clock for one batch of work and forgets it when the batch ends.
class Worker::TurnClock {
 public:
  explicit TurnClock(Worker& worker) : worker_(worker), outer_(worker.turn_time_.has_value()) {
    refresh();
  }
  ~TurnClock() {
    if (outer_) return;
    worker_.turn_time_.reset();
    worker_.publishTurn();
  }
  TurnClock(const TurnClock&) = delete;
  TurnClock& operator=(const TurnClock&) = delete;
  // Inside a nested handler call the outer clock stays; it is refreshed per batch.
  void refresh() {
    worker_.turn_time_.reset();
    worker_.turn_time_ = worker_.now();
  }
  std::chrono::steady_clock::time_point steady() const { return worker_.turn_time_->steady; }

 private:
  Worker& worker_;
  bool outer_;
};

// A consumed message whose effect is not acknowledged yet. Pooled: the strings in `decision`
// keep their capacity from one message to the next.
struct Worker::InFlight {
  rd_kafka_message_t* consumed = nullptr;  // owned; its payload is produced without a copy
  Decision decision;
  uint64_t generation = 0;  // the assignment it belongs to; stale ones commit nothing
  uint32_t attempts = 0;
  // Copied from `consumed` when it is read: by the time the message completes, librdkafka's
  // message is out of the cache, and reading its partition to find the partition's state was
  // 2% of the io thread in the end-to-end benchmark.
  int32_t partition = -1;
  int64_t offset = -1;
  int64_t timestamp_ms = -1;                              // the record's (-1: none)
  std::chrono::steady_clock::time_point read_at{};        // handed to kpipe
  std::chrono::steady_clock::time_point sent_at{};        // last write to the output started
  std::chrono::steady_clock::time_point blocked_since{};  // first blocking failure
  bool scheduled = false;  // went through its partition's KeyScheduler: finish() it when done
  // The output acknowledged it; what is left is confirming its id in the dedup store (retried
  // on its own: the effect is not redone).
  bool effect_done = false;
  bool omit_value = false;  // the record was too large for its topic: written without value
  std::shared_ptr<boost::asio::steady_timer> retry_timer;  // set while waiting for a retry
};

struct Worker::PartitionState {
  PartitionState(observe::Metrics& metrics, const config::PipelineSpec& spec, int32_t partition,
                 uint64_t gen)
      : partition(partition),
        generation(gen),
        scheduler(spec.ordering, spec.concurrency),
        labels{{"pipeline", spec.name},
               {"topic", spec.input.topic},
               {"partition", std::to_string(partition)}},
        metrics(metrics),
        lag(metrics.lag_messages.Add(labels)),
        lag_seconds(metrics.lag_seconds.Add(labels)),
        committed(metrics.committed_offset.Add(labels)),
        status_window(kStatusWindow) {
    for (size_t i = 0; i < observe::kConsumerStatuses.size(); ++i) {
      auto with_status = labels;
      with_status["status"] = observe::statusName(observe::kConsumerStatuses[i]);
      status[i] = &metrics.partition_status.Add(with_status);
    }
  }
  ~PartitionState() {
    metrics.lag_messages.Remove(&lag);
    metrics.lag_seconds.Remove(&lag_seconds);
    metrics.committed_offset.Remove(&committed);
    for (auto* gauge : status) metrics.partition_status.Remove(gauge);
    if (headroom != nullptr) metrics.retention_headroom.Remove(headroom);
  }
  PartitionState(const PartitionState&) = delete;
  PartitionState& operator=(const PartitionState&) = delete;
  int32_t partition;
  uint64_t generation;
  CommitTracker tracker;
  KeyScheduler<InFlight*> scheduler;
  bool paused = false;      // not read: at its bound, or the producer queue is full
  bool over_bound = false;  // max_pending reached; cleared once half of it is done
  // The partition's own librdkafka queue, not forwarded to the consumer queue, so that one
  // partition can wait without holding up the others. Declared before its wakeup, which
  // must go first.
  kafka::QueuePtr queue;
  std::unique_ptr<kafka::QueueWakeup> wakeup;
  std::map<std::string, std::string> labels;
  observe::Metrics& metrics;
  prometheus::Gauge& lag;
  prometheus::Gauge& lag_seconds;
  prometheus::Gauge& committed;
  observe::PartitionStatusWindow status_window;  // Burrow's rules over recent samples
  std::array<prometheus::Gauge*, 6> status{};    // kpipe_partition_status, per status
  observe::ConsumerStatus current = observe::ConsumerStatus::Ok;
  prometheus::Gauge* headroom = nullptr;  // once the input's retention is known
};

std::variant<std::unique_ptr<Worker>, std::string> Worker::create(
    boost::asio::io_context& io, const config::PipelineSpec& spec, const WorkerOptions& options,
    dedup::Store* store, std::unique_ptr<sinks::Sink> sink, observe::Metrics& metrics) {
  std::unique_ptr<Worker> w(new Worker(io, spec, options, metrics));
  if (spec.dedup) {
    if (store == nullptr) return "pipeline " + spec.name + ": no dedup store";
    w->store_name_ = store->name();
    w->session_ = store->open(io, spec.name);
  }
  w->sink_ = std::move(sink);
  if (spec.output.http && !w->sink_) return "pipeline " + spec.name + ": no sink for output.http";
  for (size_t i = 0; i < observe::kConsumerStatuses.size(); ++i) {
    w->consumer_status_[i] = &metrics.consumer_status.Add(
        {{"pipeline", spec.name}, {"status", observe::statusName(observe::kConsumerStatuses[i])}});
  }
  setStatus(w->consumer_status_, observe::ConsumerStatus::Ok);
  w->openSinkMetrics();
  auto router = Router::build(spec);
  if (auto* error = std::get_if<std::string>(&router)) return *error;
  w->router_ = std::move(std::get<std::unique_ptr<Router>>(router));

  if (auto error = w->openProducer()) return *error;

  const std::string prefix = "pipeline " + spec.name + ": ";
  kafka::Properties consumer_props{
      {"bootstrap.servers", options.bootstrap},
      {"group.id", spec.input.group},
      {"auto.offset.reset", "earliest"},
      // Offsets are stored by us, only up to the last contiguous acknowledged message, and
      // librdkafka commits what was stored every second (plus synchronously on revoke/close).
      {"enable.auto.offset.store", "false"},
      {"enable.auto.commit", "true"},
      {"auto.commit.interval.ms", "1000"},
      {"enable.partition.eof", "true"},  // tells the lag gauge where the end is when idle
      // librdkafka 2.0.2's cooperative-sticky has known bugs: stay with eager assignors.
      {"partition.assignment.strategy", "range,roundrobin"},
      // Prefetch per assigned partition (each has its own queue, see assign()): librdkafka
      // stops fetching a partition once its queue holds this many kilobytes. With a message
      // count bound instead (queued.min.messages, default 100000), 2.0.2 re-checks a full
      // partition only about once a second, which stalls fast pipelines.
      {"queued.min.messages", "1000000"},
      // 8 MiB, not less: 2.0.2 re-checks a partition whose prefetch is full only after a
      // backoff of about half a second, so the prefetch must hold that long at the partition's
      // rate. At 1 MiB one fast partition ran at a quarter of the speed (docs/BENCHMARKS.md).
      {"queued.max.messages.kbytes", "8192"},
  };
  auto consumer_conf =
      kafka::makeConf({&consumer_props, &options.properties, &options.consumer_properties});
  if (auto* error = std::get_if<std::string>(&consumer_conf)) return prefix + *error;
  rd_kafka_conf_t* cconf = std::get<kafka::ConfPtr>(consumer_conf).get();
  kafka::setLogger(cconf, "kpipe-" + spec.name + "-consumer");
  rd_kafka_conf_set_rebalance_cb(cconf, &Worker::onRebalance);
  rd_kafka_conf_set_opaque(cconf, w.get());
  auto consumer =
      kafka::makeClient(RD_KAFKA_CONSUMER, std::move(std::get<kafka::ConfPtr>(consumer_conf)));
  if (auto* error = std::get_if<std::string>(&consumer)) return prefix + *error;
  w->consumer_ = std::move(std::get<kafka::KafkaPtr>(consumer));
  // Route the main queue (rebalances, errors) into the consumer queue we serve.
  rd_kafka_poll_set_consumer(w->consumer_.get());

  w->input_topic_.reset(rd_kafka_topic_new(w->consumer_.get(), spec.input.topic.c_str(), nullptr));
  if (!w->input_topic_) {
    return prefix + "cannot create topic handles: " + rd_kafka_err2str(rd_kafka_last_error());
  }
  w->consumer_queue_.reset(rd_kafka_queue_get_consumer(w->consumer_.get()));
  Worker* self = w.get();
  w->consumer_wakeup_ = std::make_unique<kafka::QueueWakeup>(io, w->consumer_queue_.get(),
                                                             [self] { self->onConsumerReady(); });
  return w;
}

// The producer side: the producer, its topic handles, its queue and wake-up (not started).
std::optional<std::string> Worker::openProducer() {
  const config::PipelineSpec& spec = spec_;
  const WorkerOptions& options = options_;
  const std::string prefix = "pipeline " + spec.name + ": ";
  // Our defaults first, the user's kafka.properties last so that they win.
  kafka::Properties producer_props{
      {"bootstrap.servers", options.bootstrap},
      {"enable.idempotence", "true"},  // implies acks=all and ordered retries
      {"linger.ms", "5"},
      // Java-compatible key placement by default (output.partitioner): librdkafka's own
      // default, consistent_random, places keys differently from Java clients.
      {"partitioner", spec.output.partitioner},
  };
  auto producer_conf =
      kafka::makeConf({&producer_props, &options.properties, &options.producer_properties});
  if (auto* error = std::get_if<std::string>(&producer_conf)) return prefix + *error;
  rd_kafka_conf_t* pconf = std::get<kafka::ConfPtr>(producer_conf).get();
  kafka::setLogger(pconf, "kpipe-" + spec.name + "-producer");
  rd_kafka_conf_set_dr_msg_cb(pconf, &Worker::onDeliveryReport);
  rd_kafka_conf_set_opaque(pconf, this);
  auto producer =
      kafka::makeClient(RD_KAFKA_PRODUCER, std::move(std::get<kafka::ConfPtr>(producer_conf)));
  if (auto* error = std::get_if<std::string>(&producer)) return prefix + *error;
  producer_ = std::move(std::get<kafka::KafkaPtr>(producer));

  if (!spec.output.topic.empty()) {
    output_topic_.reset(rd_kafka_topic_new(producer_.get(), spec.output.topic.c_str(), nullptr));
  }
  error_topic_.reset(rd_kafka_topic_new(producer_.get(), spec.errors.topic.c_str(), nullptr));
  audit_topic_.reset(rd_kafka_topic_new(producer_.get(), spec.errors.audit_topic.c_str(), nullptr));
  if ((!output_topic_ && !sink_) || !error_topic_ || !audit_topic_) {
    return prefix + "cannot create topic handles: " + rd_kafka_err2str(rd_kafka_last_error());
  }
  producer_queue_.reset(rd_kafka_queue_get_main(producer_.get()));
  producer_wakeup_ = std::make_unique<kafka::QueueWakeup>(io_, producer_queue_.get(),
                                                          [this] { onProducerReady(); });
  return std::nullopt;
}

// Everything of the producer side goes, in the order its handles need: wake-up, queue and
// topic handles, then the client. Called with nothing in flight, so nothing is purged.
void Worker::closeProducer() {
  if (producer_wakeup_) producer_wakeup_->stop();
  producer_wakeup_.reset();
  producer_queue_.reset();
  output_topic_.reset();
  error_topic_.reset();
  audit_topic_.reset();
  producer_.reset();
}

Worker::Worker(boost::asio::io_context& io, const config::PipelineSpec& spec,
               const WorkerOptions& options, observe::Metrics& metrics)
    : io_(io),
      spec_(spec),
      options_(options),
      metrics_(metrics),
      stats_(metrics, spec.name),
      lag_timer_(io),
      stop_deadline_(io) {}

Worker::~Worker() {
  // Closed here, while every member is alive, if stop() did not: rd_kafka_destroy would close
  // it later and run the rebalance callback on destroyed members.
  const bool close_consumer = consumer_ && !closed_;
  closed_ = true;    // from here on, callbacks (purged deliveries, sink answers) change nothing
  publishTurn();     // the last turn's latencies, if it ended outside a TurnClock
  session_.reset();  // no store answer arrives after this
  partition_watch_.reset();  // joins its thread, which uses the consumer
  if (consumer_wakeup_) consumer_wakeup_->stop();
  if (producer_wakeup_) producer_wakeup_->stop();
  for (auto& [partition, state] : partitions_) {
    state->wakeup.reset();
    state->queue.reset();
  }
  if (close_consumer) rd_kafka_consumer_close(consumer_.get());
  partitions_.clear();  // their metrics go with them
  for (auto* gauge : consumer_status_) metrics_.consumer_status.Remove(gauge);
  for (auto& [topic, gauge] : topic_partitions_) metrics_.topic_partitions.Remove(gauge);
  for (auto& [key, counter] : error_counters_) metrics_.errors.Remove(counter);
  if (sink_queue_ != nullptr) metrics_.queue_depth.Remove(sink_queue_);
  if (sink_seconds_ != nullptr) metrics_.sink_seconds.Remove(sink_seconds_);
  for (auto& [topic, counter] : partition_count_changes_) {
    metrics_.partition_count_changes.Remove(counter);
  }
  for (auto& [partition, counter] : rewinds_) metrics_.rewinds.Remove(counter);
  // Undelivered messages still reference consumed payloads: purge them before anything dies.
  if (producer_) {
    rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(producer_.get(), 0);
  }
  // Whatever is still pooled with a message (blocked, or waiting for a retry) dies with us.
  for (auto& f : pool_) {
    if (f->consumed != nullptr) rd_kafka_message_destroy(f->consumed);
    f->consumed = nullptr;
  }
}

void Worker::start() {
  auto* topics = rd_kafka_topic_partition_list_new(1);
  kafka::PartitionListPtr list(topics);
  rd_kafka_topic_partition_list_add(topics, spec_.input.topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (auto err = rd_kafka_subscribe(consumer_.get(), topics)) {
    log::error("subscribe failed", {{"pipeline", spec_.name}, {"error", rd_kafka_err2str(err)}});
  }
  log::info("pipeline started", {{"pipeline", spec_.name},
                                 {"input", spec_.input.topic},
                                 {"group", spec_.input.group},
                                 {"output", spec_.output.topic},
                                 {"errors", spec_.errors.topic},
                                 {"audit", spec_.errors.audit_topic}});
  consumer_wakeup_->start();
  producer_wakeup_->start();
  scheduleLagUpdate();
  startPartitionWatch();
}

void Worker::startPartitionWatch() {
  partition_watch_.reset();  // joins its thread
  std::vector<std::string> watched{spec_.input.topic};
  if (!spec_.output.topic.empty()) watched.push_back(spec_.output.topic);
  // Topics no longer watched (an output changed by a reload) lose their series.
  std::erase_if(partition_count_changes_, [&](const auto& entry) {
    if (std::find(watched.begin(), watched.end(), entry.first) != watched.end()) return false;
    metrics_.partition_count_changes.Remove(entry.second);
    return true;
  });
  std::erase_if(topic_partitions_, [&](const auto& entry) {
    if (std::find(watched.begin(), watched.end(), entry.first) != watched.end()) return false;
    metrics_.topic_partitions.Remove(entry.second);
    return true;
  });
  for (const std::string& topic : watched) {
    std::map<std::string, std::string> labels{{"pipeline", spec_.name}, {"topic", topic}};
    partition_count_changes_[topic] = &metrics_.partition_count_changes.Add(labels);
  }
  // Through the consumer: a producer asks the broker to auto-create topics it names
  // (allow.auto.create.topics), and a misspelt input topic must not be created.
  partition_watch_ = std::make_unique<kafka::PartitionWatch>(
      io_, consumer_.get(), watched, options_.partition_watch_interval,
      [this](const std::vector<kafka::TopicReading>& readings) { onPartitionCounts(readings); },
      spec_.input.topic,
      [this](const kafka::RetentionReading& reading) { onInputRetention(reading); });
}

bool Worker::canReconfigure(const config::PipelineSpec& spec, const WorkerOptions& options) const {
  return spec.name == spec_.name && spec.input.topic == spec_.input.topic &&
         spec.input.group == spec_.input.group && options.bootstrap == options_.bootstrap &&
         options.properties == options_.properties &&
         options.consumer_properties == options_.consumer_properties;
}

void Worker::reconfigure(const config::PipelineSpec& spec, const WorkerOptions& options,
                         dedup::Store* store, std::unique_ptr<sinks::Sink> sink,
                         std::function<void(std::string error)> done) {
  auto fail = [&](std::string error) {
    boost::asio::post(io_, [done = std::move(done), error = std::move(error)] { done(error); });
  };
  if (stopping_ || reconfigure_ || !canReconfigure(spec, options)) {
    return fail("pipeline " + spec.name + ": cannot be changed in place");
  }
  if (spec.dedup && store == nullptr) return fail("pipeline " + spec.name + ": no dedup store");
  if (spec.output.http && !sink) return fail("pipeline " + spec.name + ": no sink for output.http");
  auto router = Router::build(spec);
  if (auto* error = std::get_if<std::string>(&router)) return fail(*error);
  reconfigure_ = std::make_unique<Reconfigure>(
      Reconfigure{spec, options, store, std::move(sink),
                  std::move(std::get<std::unique_ptr<Router>>(router)), std::move(done)});
  log::info("pipeline changing in place: finishing in-flight messages",
            {{"pipeline", spec_.name}, {"inflight", static_cast<uint64_t>(inflight_)}});
  // Nothing new is read (onPartitionReady) until the new definition is in place; what is
  // consumed already finishes under the old one.
  armDrainDeadline([this] {
    if (!reconfigure_) return;
    log::warn(
        "drain timeout: in-flight messages did not finish; restarting the pipeline instead "
        "(they will be redelivered)",
        {{"pipeline", spec_.name}, {"inflight", static_cast<uint64_t>(inflight_)}});
    stopInstead(std::move(reconfigure_->done), "drain timeout");
  });
  maybeFinishStop();
}

void Worker::finishReconfigure() {
  stop_deadline_.cancel();
  std::unique_ptr<Reconfigure> next = std::move(reconfigure_);
  storeOffsets();
  // All acknowledged: the old producer and sink have nothing left to deliver.
  closeProducer();
  if (sink_) sink_->close();
  session_.reset();
  const std::string old_output = spec_.output.topic;
  spec_ = next->spec;
  options_ = next->options;
  router_ = std::move(next->router);
  sink_ = std::move(next->sink);
  openSinkMetrics();  // the sink label may have changed (kafka ↔ http)
  store_name_.clear();
  if (spec_.dedup) {
    store_name_ = next->store->name();
    session_ = next->store->open(io_, spec_.name);
  }
  if (auto error = openProducer()) {
    // The same settings passed `kpipe check`; only the environment can fail this now.
    log::error("cannot reopen the producer", {{"pipeline", spec_.name}, {"error", *error}});
    stopInstead(std::move(next->done), *error);
    return;
  }
  producer_wakeup_->start();
  for (auto& [partition, state] : partitions_) {
    state->scheduler = KeyScheduler<InFlight*>(spec_.ordering, spec_.concurrency);
  }
  if (spec_.output.topic != old_output) startPartitionWatch();
  log::info("pipeline changed in place", {{"pipeline", spec_.name},
                                          {"output", sink_ ? sink_->describe()  // URL redacted
                                                           : spec_.output.topic}});
  // Read on: what arrived meanwhile waits in the partition queues.
  for (auto& [partition, state] : partitions_) {
    if (state->wakeup) state->wakeup->notify();
  }
  boost::asio::post(io_, [done = std::move(next->done)] { done({}); });
}

// DESIGN.md §1.2: more partitions send a key's later messages to another partition than its
// earlier ones (input: another consumer may process them first; output: readers see them
// out of order). kpipe cannot repair that; it says so, loudly, once per change.
void Worker::onPartitionCounts(const std::vector<kafka::TopicReading>& readings) {
  for (const auto& reading : readings) {
    if (reading.partitions < 0) {
      logRateLimited("cannot read partition count", reading.topic + ": " + reading.error);
      continue;
    }
    auto [gauge, inserted] = topic_partitions_.emplace(reading.topic, nullptr);
    if (inserted) {
      gauge->second =
          &metrics_.topic_partitions.Add({{"pipeline", spec_.name}, {"topic", reading.topic}});
    }
    gauge->second->Set(reading.partitions);
    if (auto previous = partition_counts_.observe(reading.topic, reading.partitions)) {
      partition_count_changes_.at(reading.topic)->Increment();
      log::warn("partition count changed: key order across the change is broken",
                {{"pipeline", spec_.name},
                 {"topic", reading.topic},
                 {"role", reading.topic == spec_.input.topic ? "input" : "output"},
                 {"from", static_cast<int64_t>(*previous)},
                 {"to", static_cast<int64_t>(reading.partitions)}});
    }
  }
}

// DESIGN.md §1.10: the broker's retention.ms wins; input.retention stands in for brokers that
// do not answer DescribeConfigs (the embedded one). Without either there is no headroom gauge,
// and the log says how to get one.
void Worker::onInputRetention(const kafka::RetentionReading& reading) {
  // A broker that answered once and fails later (a timeout) keeps its last answer.
  if (reading.retention_ms) broker_retention_ms_ = reading.retention_ms;
  std::optional<int64_t> ms = broker_retention_ms_;
  std::string source = "broker";
  if (!ms && spec_.input.retention) {
    ms = spec_.input.retention->count();
    source = "input.retention";
  }
  if (retention_reported_ && ms == retention_ms_) return;
  retention_reported_ = true;
  retention_ms_ = ms;
  if (ms) {
    log::info("input retention", {{"pipeline", spec_.name},
                                  {"topic", spec_.input.topic},
                                  {"retention_ms", *ms},
                                  {"source", source}});
  } else {
    log::warn("input retention unknown: no retention headroom (set input.retention)",
              {{"pipeline", spec_.name}, {"topic", spec_.input.topic}, {"error", reading.error}});
  }
}

// ---- consuming ----

void Worker::onConsumerReady() {
  // The consumer queue carries rebalance events and consumer errors (messages arrive on the
  // partition queues, see onPartitionReady). It is served even while blocked or stopping:
  // librdkafka leaves the group when it is not polled for max.poll.interval.ms.
  if (closed_) return;
  rd_kafka_message_t* batch[kConsumeBatch];
  const auto deadline = std::chrono::steady_clock::now() + kTurnBudget;
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = rd_kafka_consume_batch_queue(consumer_queue_.get(), 0, batch, kConsumeBatch);
    if (n < 0) {
      logRateLimited("consume failed", rd_kafka_err2str(rd_kafka_last_error()));
      return;
    }
    for (ssize_t i = 0; i < n; ++i) process(batch[i]);
    storeOffsets();  // drops and produce errors may have completed messages
    if (static_cast<size_t>(n) < kConsumeBatch) return;
  }
  consumer_wakeup_->notify();  // more waiting: continue after other handlers had a turn
}

// Reads one partition's queue: at most max_pending messages held for it, at most one turn
// budget at a time. A partition at its bound is not read until half of its pending messages
// are done (updatePause); meanwhile librdkafka stops fetching it once its prefetch queue is
// full. rd_kafka_pause_partitions is not used for this: in 2.0.2 a pause drops the prefetched
// messages (rdkafka_partition.c, rd_kafka_q_purge_toppar_version) and a resume fetches them
// again, which cut throughput from 97k to 11k msg/s in tests/bench/ordering_bench.py.
void Worker::onPartitionReady(PartitionState& state) {
  // While stopping nothing new is read: what is read would be dropped uncommitted anyway.
  if (closed_ || stopping_ || reconfigure_ || state.paused || !state.queue) return;
  rd_kafka_message_t* batch[kConsumeBatch];
  const int32_t partition = state.partition;
  const uint64_t generation = state.generation;
  TurnClock clock(*this);
  const auto deadline = clock.steady() + kTurnBudget;
  for (; clock.steady() < deadline; clock.refresh()) {
    const size_t pending = state.scheduler.pending();
    const size_t room = pending < spec_.max_pending ? spec_.max_pending - pending : 1;
    const size_t want = std::min(kConsumeBatch, room);
    ssize_t n = rd_kafka_consume_batch_queue(state.queue.get(), 0, batch, want);
    if (n < 0) {
      logRateLimited("consume failed", rd_kafka_err2str(rd_kafka_last_error()));
      return;
    }
    for (ssize_t i = 0; i < n; ++i) process(batch[i]);
    storeOffsets();
    // process() never revokes, but stay safe: the state must still be this assignment's.
    auto it = partitions_.find(partition);
    if (it == partitions_.end() || it->second->generation != generation) return;
    if (static_cast<size_t>(n) < want || state.paused) return;
  }
  state.wakeup->notify();  // more waiting: continue after other handlers had a turn
}

void Worker::process(rd_kafka_message_t* message) {
  if (message->err) {
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (auto it = partitions_.find(message->partition); it != partitions_.end()) {
        it->second->tracker.observeEnd(message->offset);
      }
    } else {
      logRateLimited("consumer error", rd_kafka_message_errstr(message));
    }
    rd_kafka_message_destroy(message);
    return;
  }
  auto it = partitions_.find(message->partition);
  if (it == partitions_.end() || stopping_) {  // revoked meanwhile: the next owner reads it
    rd_kafka_message_destroy(message);
    return;
  }
  PartitionState& state = *it->second;
  InFlight* f = acquire();
  f->consumed = message;
  f->partition = message->partition;
  f->offset = message->offset;
  f->generation = state.generation;
  f->read_at = now().steady;
  router_->route(static_cast<const char*>(message->payload), message->len, f->decision);
  f->timestamp_ms = rd_kafka_message_timestamp(message, nullptr);
  state.tracker.begin(f->offset, f->timestamp_ms);
  ++inflight_;
  // Every message waits for its turn (key, partition or a free slot) and counts in the
  // partition's bound. One without a key failed before the key stage: an error record that
  // waits for no other message, so it gets a key of its own (from its offset).
  f->scheduled = true;
  const uint64_t key = f->decision.has_key
                           ? f->decision.key_hash
                           : 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(message->offset + 1);
  f->decision.key_hash = key;
  const bool start_now = state.scheduler.submit(f, key);
  updatePause(state);
  if (start_now) start(f);
}

// Its turn has come: reserve its id (dedup), then write it, or queue it (in order) when the
// producer queue is full; once written, confirm its id. Called again, from the top, after a
// retry's backoff: each step knows whether it is done.
void Worker::start(InFlight* f) {
  const Decision& d = f->decision;
  if (d.route == Route::Output && session_) {
    if (f->effect_done) return confirm(f);
    if (!d.reserved) return reserve(f);
  }
  if (d.route == Route::Drop) return complete(f);
  if (sink_ && d.route == Route::Output) return sendToSink(f);
  if (!blocked_.empty() || !produce(f)) block(f);
}

// ---- dedup (DESIGN.md §1.5): reserve before the effect, confirm after it ----

// Where a message came from, for logs and /status: "partition 3 offset 42".
std::string Worker::positionOf(const InFlight* f) {
  return "partition " + std::to_string(f->partition) + " offset " + std::to_string(f->offset);
}

// Names this copy of the message in the store, so that asking again after a lost answer
// finds its own reservation. Only the partition and offset: the store adds the process.
// Empty for a store that ignores it (the memory store).
std::string_view Worker::ownerOf(const InFlight* f, std::array<char, 32>& buffer) const {
  if (!session_->usesOwner()) return {};
  char* end = std::to_chars(buffer.data(), buffer.data() + 11, f->partition).ptr;
  *end++ = ':';
  end = std::to_chars(end, buffer.data() + buffer.size(), f->offset).ptr;
  return {buffer.data(), static_cast<size_t>(end - buffer.data())};
}

// The answer may come inside this call (memory store) or later: nothing touches `f` after it.
void Worker::reserve(InFlight* f) {
  std::array<char, 32> owner{};
  session_->reserve(f->decision.id, ownerOf(f, owner),
                    [this, f](const dedup::ReserveReply& reply) { onReserved(f, reply); });
}

void Worker::onReserved(InFlight* f, const dedup::ReserveReply& reply) {
  if (closed_) return;
  Decision& d = f->decision;
  if (reply.error.empty() && reply.result == dedup::ReserveResult::New) d.reserved = true;
  if (ownPartition(f) == nullptr) {  // revoked meanwhile: the next owner redoes it
    discard(f);
    return;
  }
  if (!reply.error.empty()) {
    // The store is down or slow: a blocking failure. Never go on without an answer: that
    // would pass the message through undeduplicated.
    blockingFailure(f, stage::kDedup, "store " + store_name_ + ": " + reply.error);
    return;
  }
  switch (reply.result) {
    case dedup::ReserveResult::New:
      start(f);
      break;
    case dedup::ReserveResult::Done:
      router_->markDuplicate(d, dedup::ReserveResult::Done);
      start(f);  // to the audit topic, or dropped
      break;
    case dedup::ReserveResult::InProgress:
      // Another copy holds the id (another member after a rebalance, or a copy under another
      // key): it is not known yet whether its effect will happen, so this one is not a
      // duplicate yet. Ask again after a backoff; a holder that crashed lets go when its
      // reservation expires.
      logRateLimited("message id is being processed by another copy, will retry",
                     "id " + d.id + " (" + positionOf(f) + ")");
      retryLater(f);
      break;
  }
}

// The output acknowledged the message: remember its id, then it is done.
void Worker::effectDone(InFlight* f) {
  if (f->decision.route == Route::Output && f->decision.reserved) {
    f->effect_done = true;
    confirm(f);
    return;
  }
  complete(f);
}

void Worker::confirm(InFlight* f) {
  session_->confirm(f->decision.id, [this, f](std::string_view error) { onConfirmed(f, error); });
}

void Worker::onConfirmed(InFlight* f, std::string_view error) {
  if (closed_) return;
  if (error.empty()) {
    f->decision.reserved = false;
    complete(f);
    return;
  }
  // The effect happened but its id is not remembered yet: retry the confirm (only), with the
  // key held and the commit position below the message, so that a crash now redoes it.
  errorCounter(error_class::kBlocking, stage::kDedup).Increment();
  if (ownPartition(f) == nullptr) {
    discard(f);
    return;
  }
  logRateLimited("dedup confirm failed, will retry",
                 "store " + store_name_ + ": " + std::string(error) + " (" + positionOf(f) + ")");
  retryLater(f);
}

// Gives back the reservation of a message whose effect did not happen (failed, refused or
// revoked), so that the next attempt, or the next owner, can take it at once.
void Worker::releaseReservation(InFlight* f) {
  Decision& d = f->decision;
  if (!d.reserved || !session_) return;
  std::array<char, 32> owner{};
  session_->release(d.id, ownerOf(f, owner));
  d.reserved = false;
}

// The sink holds the consumed payload (no copy) until it answers; the answer comes on the
// io_context thread, never from inside send().
void Worker::sendToSink(InFlight* f) {
  const rd_kafka_message_t* in = f->consumed;
  sinks::OutboundMessage message;
  message.id = f->decision.id;
  message.value = std::string_view(static_cast<const char*>(in->payload), in->len);
  // Trace context passes through (DESIGN.md §1.9); other Kafka headers may hold bytes that
  // are not valid in HTTP.
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(in, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (const char* name : {"traceparent", "tracestate"}) {
      const void* value = nullptr;
      size_t size = 0;
      if (rd_kafka_header_get_last(headers, name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          value != nullptr) {
        message.headers.emplace_back(name, std::string_view(static_cast<const char*>(value), size));
      }
    }
  }
  f->sent_at = std::chrono::steady_clock::now();
  sink_->send(message,
              [this, f, alive = std::weak_ptr<char>(alive_)](const sinks::SendResult& result) {
                if (!alive.expired()) onSinkResult(f, result);
              });
}

// The producer queue is full: keep `f` (in order) and pause fetching until it drains.
void Worker::block(InFlight* f) {
  blocked_.push_back(f);
  if (blocked_.size() == 1) {
    for (auto& [partition, state] : partitions_) updatePause(*state);
  }
}

// A partition is paused (not read) while its pending messages are over max_pending (until
// half of them are done) or while the producer queue is full. What kpipe holds is bounded by
// max_pending per partition; what librdkafka prefetches by queued.max.messages.kbytes.
void Worker::updatePause(PartitionState& state) {
  if (closed_) return;
  const size_t pending = state.scheduler.pending();
  state.over_bound =
      state.over_bound ? pending > spec_.max_pending / 2 : pending >= spec_.max_pending;
  const bool pause = state.over_bound || !blocked_.empty();
  if (pause == state.paused) return;
  state.paused = pause;
  if (pause) {
    stats_.paused.Increment();
  } else {
    stats_.paused.Decrement();
    if (state.wakeup) state.wakeup->notify();
  }
}

// ---- producing ----

bool Worker::produce(InFlight* f) {
  const rd_kafka_message_t* in = f->consumed;
  const Decision& d = f->decision;
  rd_kafka_topic_t* topic = d.route == Route::Output  ? output_topic_.get()
                            : d.route == Route::Error ? error_topic_.get()
                                                      : audit_topic_.get();
  const void* key = d.route == Route::Output ? d.output_key.data() : in->key;
  size_t key_len = d.route == Route::Output ? d.output_key.size() : in->key_len;

  // Original headers travel with every record (traceparent and friends); error and audit
  // records say why and where from.
  rd_kafka_headers_t* original = nullptr;
  rd_kafka_message_headers(in, &original);
  rd_kafka_headers_t* headers = nullptr;
  // A v2 record without headers still parses to an empty list: copying that would cost an
  // allocation per record for nothing.
  if (original != nullptr && rd_kafka_header_cnt(original) > 0) {
    headers = rd_kafka_headers_copy(original);
  }
  if (d.route != Route::Output) {
    if (headers == nullptr) headers = rd_kafka_headers_new(8);
    auto add = [&](std::string_view name, std::string_view value) {
      rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
    };
    const bool error = d.route == Route::Error;
    add(error ? header::kErrorStage : header::kAuditStage, d.stage);
    add(error ? header::kErrorReason : header::kAuditReason, d.reason);
    if (error) add(header::kErrorClass, d.error_class);
    add(header::kOriginTopic, spec_.input.topic);
    add(header::kOriginPartition, std::to_string(f->partition));
    add(header::kOriginOffset, std::to_string(f->offset));
    add(header::kOriginTimestamp, std::to_string(f->timestamp_ms));
    add(header::kPipeline, spec_.name);
    if (f->omit_value) {
      add(header::kErrorValueOmitted,
          std::to_string(in->len) + " bytes: too large for " + rd_kafka_topic_name(topic));
    }
  }

  // No RD_KAFKA_MSG_F_COPY: the payload lives in the consumed message, which we keep (and
  // destroy) with its delivery report. Keys and headers are copied by librdkafka.
  rd_kafka_resp_err_t err = rd_kafka_producev(
      producer_.get(), RD_KAFKA_V_RKT(topic), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
      RD_KAFKA_V_VALUE(f->omit_value ? nullptr : in->payload, f->omit_value ? 0 : in->len),
      RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(f),
      RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    f->sent_at = std::chrono::steady_clock::now();
    return true;
  }
  if (headers != nullptr) rd_kafka_headers_destroy(headers);  // not taken on failure
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return false;
  // Refused at once (e.g. unknown topic): a blocking failure like a failed delivery.
  delivered(f, err);
  return true;
}

void Worker::onDeliveryReport(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  static_cast<Worker*>(opaque)->delivered(static_cast<InFlight*>(message->_private), message->err);
}

void Worker::onProducerReady() {
  TurnClock clock(*this);
  rd_kafka_poll(producer_.get(), 0);  // serves delivery reports → delivered()
  const bool was_blocked = !blocked_.empty();
  while (!blocked_.empty()) {
    InFlight* f = blocked_.front();
    if (ownPartition(f) == nullptr) {
      blocked_.pop_front();
      discard(f);
      continue;
    }
    if (!produce(f)) break;
    blocked_.pop_front();
  }
  storeOffsets();
  if (blocked_.empty() && was_blocked) {
    for (auto& [partition, state] : partitions_) updatePause(*state);
  }
  maybeFinishStop();
}

void Worker::delivered(InFlight* f, rd_kafka_resp_err_t err) {
  // After the stop gave up waiting (or in the destructor's purge) nothing is processed any
  // more: what did not finish is redelivered to the next run.
  if (closed_) return;
  if (f->decision.route == Route::Output) observeSink(f);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    effectDone(f);
    return;
  }
  if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && !f->omit_value && ownPartition(f) != nullptr) {
    // Retrying cannot help: the record itself is too large for the topic. An output record
    // becomes an error record (non-blocking, stage size); an error or audit record is
    // written without its value, which its headers still describe.
    Decision& d = f->decision;
    if (d.route == Route::Output) {
      releaseReservation(f);
      d.route = Route::Error;
      d.stage = stage::kSize;
      d.reason = "value of " + std::to_string(f->consumed->len) +
                 " bytes is too large for output topic " + spec_.output.topic + ": " +
                 rd_kafka_err2str(err);
    } else {
      f->omit_value = true;
    }
    start(f);
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__FATAL && fatal_error_.empty()) {
    // The idempotent producer cannot go on (librdkafka's fatal errors): every produce fails
    // from now on. Nothing is committed past the failing messages; /healthz reports it so
    // that the supervisor restarts kpipe.
    char reason[512];
    rd_kafka_fatal_error(producer_.get(), reason, sizeof reason);
    fatal_error_ = std::string("producer fatal error: ") + reason;
    log::error("producer failed fatally: restart kpipe",
               {{"pipeline", spec_.name}, {"error", fatal_error_}});
  }
  const std::string_view failed_stage = f->decision.route == Route::Output  ? stage::kOutput
                                        : f->decision.route == Route::Error ? stage::kErrorTopic
                                                                            : stage::kAuditTopic;
  blockingFailure(f, failed_stage, rd_kafka_err2str(err));
}

void Worker::onSinkResult(InFlight* f, const sinks::SendResult& result) {
  if (closed_) return;  // the pool dies with the worker
  observeSink(f);
  switch (result.status) {
    case sinks::SendStatus::Ok:
      effectDone(f);
      break;
    case sinks::SendStatus::Retry:
      blockingFailure(f, stage::kSink, result.reason);
      break;
    case sinks::SendStatus::Reject: {
      // The sink refused this message for good (e.g. HTTP 400): retrying cannot help, so it
      // is a non-blocking failure. The id was not used: give it back.
      if (ownPartition(f) == nullptr) {  // revoked meanwhile: the next owner redoes it
        discard(f);
        break;
      }
      Decision& d = f->decision;
      releaseReservation(f);
      d.route = Route::Error;
      d.stage = stage::kSink;
      d.error_class = error_class::kNonBlocking;
      d.reason = sink_->describe() + " refused the message: " + result.reason;
      start(f);
      break;
    }
  }
  storeOffsets();
  maybeFinishStop();
}

// Something outside is down or failing (broker, sink): the message could not take effect.
// Never skip it (that would lose it): retry with backoff, its key held and the commit position
// below it meanwhile; after errors.max_attempts (when set) an output message goes to the error
// topic as "exhausted". Error and audit records are retried forever: they have nowhere else to go.
void Worker::blockingFailure(InFlight* f, std::string_view failed_stage,
                             const std::string& reason) {
  errorCounter(error_class::kBlocking, failed_stage).Increment();
  noteError(f, failed_stage, reason);
  if (ownPartition(f) == nullptr) {  // revoked meanwhile: the next owner redoes it
    discard(f);
    return;
  }
  logRateLimited("blocking failure, will retry", std::string(failed_stage) + ": " + reason + " (" +
                                                     positionOf(f) + ", attempt " +
                                                     std::to_string(f->attempts + 1) + ")");
  // The effect did not happen: the id is given back, and taken again before the next attempt
  // (another copy may have done it meanwhile: then this one is a duplicate).
  releaseReservation(f);
  Decision& d = f->decision;
  if (d.route == Route::Output && spec_.errors.max_attempts > 0 &&
      f->attempts + 1 >= spec_.errors.max_attempts) {
    d.route = Route::Error;
    d.stage = failed_stage;
    d.error_class = error_class::kExhausted;
    d.reason = "gave up after " + std::to_string(f->attempts + 1) + " attempts: " + reason;
    if (f->attempts++ == 0) {  // held until the error record is written
      stats_.blocked_keys.Increment();
      f->blocked_since = std::chrono::steady_clock::now();
    }
    start(f);
    return;
  }
  retryLater(f);
}

void Worker::observeSink(const InFlight* f) {
  if (sink_seconds_ != nullptr && f->sent_at != std::chrono::steady_clock::time_point{}) {
    sink_seconds_->Observe(std::chrono::duration<double>(now().steady - f->sent_at).count());
  }
}

prometheus::Counter& Worker::errorCounter(std::string_view cls, std::string_view stage_name) {
  auto key = std::make_pair(cls, stage_name);
  auto it = error_counters_.find(key);
  if (it == error_counters_.end()) {
    prometheus::Counter& counter = metrics_.errors.Add({{"pipeline", spec_.name},
                                                        {"class", std::string(cls)},
                                                        {"stage", std::string(stage_name)}});
    it = error_counters_.emplace(key, &counter).first;
  }
  return *it->second;
}

void Worker::retryLater(InFlight* f) {
  const auto& retry = spec_.errors.retry;
  double delay =
      static_cast<double>(retry.initial.count()) *
      std::pow(retry.multiplier, static_cast<double>(std::min<uint32_t>(f->attempts, 30)));
  delay = std::min(delay, static_cast<double>(retry.max.count()));
  static thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(1.0 - retry.jitter, 1.0 + retry.jitter);
  delay *= jitter(rng);
  if (f->attempts++ == 0) {
    stats_.blocked_keys.Increment();
    f->blocked_since = std::chrono::steady_clock::now();
  }
  stats_.retries.Increment();
  f->retry_timer = std::make_shared<boost::asio::steady_timer>(
      io_, std::chrono::milliseconds(static_cast<int64_t>(delay)));
  f->retry_timer->async_wait([this, f, timer = f->retry_timer, alive = std::weak_ptr<char>(alive_)](
                                 const boost::system::error_code& ec) {
    // A timer that had already fired when revoke() or a stop cancelled it still runs, with
    // success: only the identity check tells that `f` was discarded (and maybe reused).
    if (ec || alive.expired() || closed_ || f->retry_timer != timer) return;
    f->retry_timer.reset();
    if (ownPartition(f) == nullptr) {
      discard(f);
      return;
    }
    start(f);
  });
}

void Worker::complete(InFlight* f) {
  switch (f->decision.route) {
    case Route::Output:
      stats_.ok.Increment();
      break;
    case Route::Error:
      // The message itself was bad (invalid), or the sink refused it or the retries ran out
      // (error); kpipe_errors_total says which stage.
      if (f->decision.error_class == error_class::kExhausted || f->decision.stage == stage::kSink) {
        stats_.error.Increment();
      } else {
        stats_.invalid.Increment();
      }
      errorCounter(f->decision.error_class, f->decision.stage).Increment();
      noteError(f, f->decision.stage, f->decision.reason);
      break;
    case Route::Audit:
    case Route::Drop:
      stats_.duplicate.Increment();
      break;
  }
  const TurnTime time = now();
  processing_seconds_.observe(std::chrono::duration<double>(time.steady - f->read_at).count());
  if (int64_t ts = f->timestamp_ms; ts > 0) {
    end_to_end_seconds_.observe(static_cast<double>(std::max<int64_t>(0, time.wall_ms - ts)) /
                                1000.0);
  }
  PartitionState* state = ownPartition(f);
  if (state != nullptr && state->tracker.complete(f->offset)) {
    dirty_partitions_.push_back(f->partition);
  }
  const bool scheduled = f->scheduled;
  const uint64_t key = f->decision.key_hash;
  recycle(f);
  if (state != nullptr && scheduled) startNext(*state, key);
}

// A scheduled message of `key` is done: start what was waiting for it (or for its slot).
// Re-entrant without recursion: a start can complete another message at once (a duplicate
// the memory store answers inside the call, a produce refused at once), which lands here
// again; that inner call only queues what it releases, and the outermost call starts it, so
// a long run of such messages cannot exhaust the stack.
void Worker::startNext(PartitionState& state, uint64_t key) {
  state.scheduler.finish(key, started_);
  updatePause(state);
  if (starting_) return;
  starting_ = true;
  for (size_t i = 0; i < started_.size(); ++i) {
    InFlight* f = started_[i];  // started_ may grow inside start()
    start(f);
  }
  started_.clear();
  starting_ = false;
}

// Messages still waiting for their turn in `state`: dropped uncommitted (stop, revoke); the
// commit position stays below them, so they are read again (by this member or the next owner).
void Worker::discardWaiting(PartitionState& state) {
  std::vector<InFlight*> waiting;
  state.scheduler.takeWaiting(waiting);
  for (InFlight* f : waiting) discard(f);
}

// The state of f's partition while it is still assigned in the generation f was read in;
// null once the partition was revoked (even if it has been assigned again since).
Worker::PartitionState* Worker::ownPartition(const InFlight* f) {
  auto it = partitions_.find(f->partition);
  if (it == partitions_.end() || it->second->generation != f->generation) return nullptr;
  return it->second.get();
}

// Work of a partition that is no longer ours: drop it uncommitted; its next owner redoes it.
void Worker::discard(InFlight* f) {
  releaseReservation(f);
  recycle(f);
}

void Worker::storeOffsets() {
  if (dirty_partitions_.empty()) return;
  std::sort(dirty_partitions_.begin(), dirty_partitions_.end());
  dirty_partitions_.erase(std::unique(dirty_partitions_.begin(), dirty_partitions_.end()),
                          dirty_partitions_.end());
  for (int32_t partition : dirty_partitions_) {
    auto it = partitions_.find(partition);
    if (it == partitions_.end()) continue;
    int64_t next = it->second->tracker.commitPosition();
    // rd_kafka_offset_store() stores offset+1: pass the last finished offset.
    if (next > 0) rd_kafka_offset_store(input_topic_.get(), partition, next - 1);
    it->second->committed.Set(static_cast<double>(next));
  }
  dirty_partitions_.clear();
}

// ---- rebalancing ----

void Worker::onRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* self = static_cast<Worker*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->assign(partitions);
  } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    self->revoke(partitions, rd_kafka_assignment_lost(rk) != 0);
  } else {
    log::error("rebalance error",
               {{"pipeline", self->spec_.name}, {"error", rd_kafka_err2str(err)}});
    self->revoke(nullptr, /*lost=*/true);
  }
}

std::string Worker::readiness() const {
  if (!fatal_error_.empty()) return fatal_error_;
  if (stopping_) return "stopping";
  if (!joined_) return "waiting for an assignment from consumer group " + spec_.input.group;
  return {};
}

void Worker::assign(rd_kafka_topic_partition_list_t* partitions) {
  joined_ = true;
  std::string names;
  std::vector<PartitionState*> added;
  for (int i = 0; i < partitions->cnt; ++i) {
    int32_t p = partitions->elems[i].partition;
    auto state = std::make_unique<PartitionState>(metrics_, spec_, p, ++generation_);
    // Split the partition off the consumer queue (before the assign, which would forward it
    // there): it gets its own queue and wake-up, read or left alone on its own.
    state->queue.reset(rd_kafka_queue_get_partition(consumer_.get(), spec_.input.topic.c_str(), p));
    if (state->queue) {
      rd_kafka_queue_forward(state->queue.get(), nullptr);
      PartitionState* raw = state.get();
      state->wakeup = std::make_unique<kafka::QueueWakeup>(io_, state->queue.get(),
                                                           [this, raw] { onPartitionReady(*raw); });
    }
    added.push_back(state.get());
    partitions_[p] = std::move(state);
    names += (names.empty() ? "" : ",") + std::to_string(p);
  }
  stats_.assigned.Set(static_cast<double>(partitions_.size()));
  log::info("partitions assigned",
            {{"pipeline", spec_.name}, {"topic", spec_.input.topic}, {"partitions", names}});
  rd_kafka_assign(consumer_.get(), partitions);
  for (PartitionState* state : added) {
    if (state->wakeup) state->wakeup->start();
    updatePause(*state);
  }
}

void Worker::revoke(rd_kafka_topic_partition_list_t* partitions, bool lost) {
  std::set<int32_t> revoked;
  if (partitions != nullptr) {
    for (int i = 0; i < partitions->cnt; ++i) revoked.insert(partitions->elems[i].partition);
  } else {
    for (const auto& [p, state] : partitions_) revoked.insert(p);
  }
  // Finish what is in flight so that it is committed by us, not redone by the next owner;
  // messages waiting for their key start as their predecessors are acknowledged (inside the
  // flush's delivery reports). Documented blocking point: up to revoke_timeout on the
  // io_context thread. After a lost assignment the group has moved on: nothing more is stored.
  if (!lost && !closed_) {
    rd_kafka_flush(producer_.get(), static_cast<int>(spec_.revoke_timeout.count()));
    storeOffsets();
  }
  // What still waits is left to the next owner, which reads it again.
  for (int32_t p : revoked) {
    if (auto it = partitions_.find(p); it != partitions_.end()) discardWaiting(*it->second);
  }
  // What is still in flight now belongs to an old generation and will commit nothing. Its
  // dedup reservations are given back now, before these partitions can come back to this
  // process: a redelivered copy must meet a free id, not its own stale reservation (which
  // would make it a "duplicate" and lose it).
  for (auto& f : pool_) {
    if (f->consumed != nullptr && revoked.count(f->partition) > 0) {
      // One whose effect happened keeps its reservation: its confirm is on the way.
      if (!f->effect_done) releaseReservation(f.get());
      // One waiting for a retry is dropped now rather than when its timer fires, so that a
      // drain does not wait out a backoff for work that is no longer ours.
      if (f->retry_timer) {
        f->retry_timer->cancel();
        f->retry_timer.reset();
        discard(f.get());
      }
    }
  }
  std::string names;
  for (int32_t p : revoked) {
    if (auto it = partitions_.find(p); it != partitions_.end()) {
      if (it->second->paused) stats_.paused.Decrement();
      partitions_.erase(it);
    }
    names += (names.empty() ? "" : ",") + std::to_string(p);
  }
  stats_.assigned.Set(static_cast<double>(partitions_.size()));
  log::info(lost ? "partitions lost" : "partitions revoked",
            {{"pipeline", spec_.name}, {"topic", spec_.input.topic}, {"partitions", names}});
  // With enable.auto.commit librdkafka commits the stored offsets of the partitions it
  // releases here (rdkafka_assignment.c, "unassigned partitions"): no synchronous commit
  // that could hold the io thread for a session timeout when the coordinator is away.
  rd_kafka_assign(consumer_.get(), nullptr);
}

// ---- lag ----

void Worker::scheduleLagUpdate() {
  lag_timer_.expires_after(kLagInterval);
  lag_timer_.async_wait(
      [this, alive = std::weak_ptr<char>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        updateLag();
        if (++ticks_ % kProgressEveryTicks == 0) logProgress();
        // Polled at least every tick, idle or not (max.poll.interval.ms).
        consumer_wakeup_->notify();
        scheduleLagUpdate();
      });
}

// What changes per message is published at the end of each turn and on each lag tick (for
// work done outside a turn, e.g. a remote store's answers), not per message: the in-flight
// gauge is set from inflight_ (two compare-and-swap loops per message less) and the latency
// histograms get the turn's observations in one call each. A scrape sees the last turn's.
void Worker::publishTurn() {
  stats_.inflight.Set(static_cast<double>(inflight_));
  processing_seconds_.flush();
  end_to_end_seconds_.flush();
}

void Worker::updateLag() {
  publishTurn();
  // Sampled with the lag: cheap reads of librdkafka's counters.
  stats_.consumer_queue.Set(static_cast<double>(rd_kafka_queue_length(consumer_queue_.get())));
  stats_.producer_queue.Set(static_cast<double>(rd_kafka_outq_len(producer_.get())));
  stats_.blocked_queue.Set(static_cast<double>(blocked_.size()));
  size_t waiting = 0;
  for (auto& [partition, state] : partitions_) waiting += state->scheduler.waiting();
  stats_.waiting_queue.Set(static_cast<double>(waiting));
  if (sink_queue_ != nullptr) sink_queue_->Set(static_cast<double>(sink_->queued()));
  // Once a second over the pool (its size is the peak number of messages held): cheaper than
  // keeping an ordered index of blocked messages on the hot path.
  auto now = std::chrono::steady_clock::now();
  auto oldest = now;
  for (const auto& f : pool_) {
    if (f->consumed != nullptr && f->attempts > 0) oldest = std::min(oldest, f->blocked_since);
  }
  stats_.oldest_blocked.Set(std::chrono::duration<double>(now - oldest).count());
  const auto now_ms = static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
  std::vector<observe::ConsumerStatus> statuses;
  for (auto& [partition, state] : partitions_) {
    int64_t low = 0;
    int64_t high = 0;
    // Cached from fetch responses: no broker round trip on the io thread.
    if (rd_kafka_get_watermark_offsets(consumer_.get(), spec_.input.topic.c_str(), partition, &low,
                                       &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        high < 0) {
      continue;
    }
    int64_t position = state->tracker.commitPosition();
    if (position == CommitTracker::kUnknown) continue;
    noteRewind(partition, position);
    const int64_t lag = std::max<int64_t>(0, high - position);
    state->lag.Set(static_cast<double>(lag));
    // Lag in seconds: the age of the oldest message not done (the one the commit position
    // waits for). When it is not read yet, the last one done stands in for it: the next
    // message is at most that old, so the figure errs on the side of alarm.
    const int64_t oldest_ms = state->tracker.oldestPendingTimestamp();
    double seconds = 0;
    if (lag > 0 && oldest_ms > 0)
      seconds = std::max(0.0, (now_ms - static_cast<double>(oldest_ms)) / 1000.0);
    state->lag_seconds.Set(seconds);
    if (retention_ms_) {
      if (state->headroom == nullptr) {
        state->headroom = &metrics_.retention_headroom.Add(state->labels);
      }
      state->headroom->Set(*retention_ms_ < 0
                               ? std::numeric_limits<double>::infinity()
                               : static_cast<double>(*retention_ms_) / 1000.0 - seconds);
    }
    state->status_window.record({now, position, high, lag});
    const observe::ConsumerStatus status = state->status_window.evaluate(now);
    setStatus(state->status, status);
    state->current = status;
    statuses.push_back(status);
  }
  // The pipeline: Burrow's group rule (a stalled, stopped or rewound partition is an error).
  pipeline_status_ = observe::groupStatus(statuses);
  setStatus(consumer_status_, pipeline_status_);
}

// A commit position below the last one seen for the partition, in this assignment or an
// earlier one (offsets reset while the group was empty, or a member that committed less).
void Worker::noteRewind(int32_t partition, int64_t position) {
  auto [last, first] = last_positions_.try_emplace(partition, position);
  if (!first && position < last->second) {
    auto [counter, inserted] = rewinds_.try_emplace(partition, nullptr);
    if (inserted) {
      counter->second = &metrics_.rewinds.Add({{"pipeline", spec_.name},
                                               {"topic", spec_.input.topic},
                                               {"partition", std::to_string(partition)}});
    }
    counter->second->Increment();
    log::warn("commit position went backwards: messages will be processed again",
              {{"pipeline", spec_.name},
               {"partition", static_cast<int64_t>(partition)},
               {"from", last->second},
               {"to", position}});
  }
  last->second = position;
}

// One line per pipeline and interval while messages flow: what an operator tailing the log
// wants to see, without a line per message.
void Worker::logProgress() {
  double ok = stats_.ok.Value();
  double invalid = stats_.invalid.Value();
  double duplicate = stats_.duplicate.Value();
  if (ok == logged_ok_ && invalid == logged_invalid_ && duplicate == logged_duplicate_) return;
  int64_t lag = 0;
  for (auto& [partition, state] : partitions_) lag += static_cast<int64_t>(state->lag.Value());
  log::info("progress", {{"pipeline", spec_.name},
                         {"ok", static_cast<int64_t>(ok - logged_ok_)},
                         {"invalid", static_cast<int64_t>(invalid - logged_invalid_)},
                         {"duplicate", static_cast<int64_t>(duplicate - logged_duplicate_)},
                         {"lag", lag},
                         {"inflight", static_cast<uint64_t>(inflight_)},
                         {"interval_s", static_cast<int64_t>(kProgressEveryTicks)}});
  logged_ok_ = ok;
  logged_invalid_ = invalid;
  logged_duplicate_ = duplicate;
}

// ---- stopping ----

void Worker::stop(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(done);
  log::info("pipeline stopping: finishing in-flight messages",
            {{"pipeline", spec_.name}, {"inflight", static_cast<uint64_t>(inflight_)}});
  armDrainDeadline([this] {
    log::warn("drain timeout: closing with messages in flight (they will be redelivered)",
              {{"pipeline", spec_.name}, {"inflight", static_cast<uint64_t>(inflight_)}});
    finishStop();
  });
  maybeFinishStop();
}

// After drain_timeout, `expired` runs, unless the worker closed or the drain ended first.
void Worker::armDrainDeadline(std::function<void()> expired) {
  stop_deadline_.expires_after(options_.drain_timeout);
  stop_deadline_.async_wait([this, alive = std::weak_ptr<char>(alive_),
                             expired = std::move(expired)](const boost::system::error_code& ec) {
    if (ec || alive.expired() || closed_) return;
    expired();
  });
}

// A reconfigure() that cannot finish stops the worker as stop() would, then tells its caller.
void Worker::stopInstead(std::function<void(std::string)> done, std::string error) {
  reconfigure_.reset();
  stopping_ = true;
  on_stopped_ = [done = std::move(done), error = std::move(error)] { done(error); };
  finishStop();
}

// kpipe_sink_seconds{sink=kafka|http} and, for an HTTP sink, its queue depth; replaces those of
// a previous definition.
void Worker::openSinkMetrics() {
  if (sink_queue_ != nullptr) metrics_.queue_depth.Remove(sink_queue_);
  if (sink_seconds_ != nullptr) metrics_.sink_seconds.Remove(sink_seconds_);
  sink_queue_ = nullptr;
  sink_seconds_ = &metrics_.sink_seconds.Add(
      {{"pipeline", spec_.name}, {"sink", sink_ ? "http" : "kafka"}}, observe::kLatencyBuckets);
  if (sink_) sink_queue_ = &metrics_.queue_depth.Add({{"pipeline", spec_.name}, {"queue", "sink"}});
}

void Worker::maybeFinishStop() {
  if (closed_ || inflight_ != 0) return;
  if (stopping_) {
    finishStop();
  } else if (reconfigure_) {
    finishReconfigure();
  }
}

void Worker::finishStop() {
  closed_ = true;
  stop_deadline_.cancel();
  lag_timer_.cancel();
  storeOffsets();
  // Leaves the group: the rebalance callback (revoke) runs inside and librdkafka commits the
  // stored offsets. Documented blocking point. Partition queues must be gone before the close
  // (rdkafka.h, rd_kafka_queue_get_partition).
  for (auto& [partition, state] : partitions_) {
    state->wakeup.reset();
    state->queue.reset();
  }
  consumer_wakeup_->stop();
  if (sink_) sink_->close();
  rd_kafka_consumer_close(consumer_.get());
  producer_wakeup_->stop();
  log::info("pipeline stopped", {{"pipeline", spec_.name}});
  if (on_stopped_) boost::asio::post(io_, std::move(on_stopped_));
}

// ---- bookkeeping ----

Worker::InFlight* Worker::acquire() {
  if (free_.empty()) {
    pool_.push_back(std::make_unique<InFlight>());
    return pool_.back().get();
  }
  InFlight* f = free_.back();
  free_.pop_back();
  return f;
}

void Worker::recycle(InFlight* f) {
  rd_kafka_message_destroy(f->consumed);
  f->consumed = nullptr;
  f->omit_value = false;
  f->scheduled = false;
  f->effect_done = false;
  f->sent_at = {};
  f->blocked_since = {};
  if (f->attempts > 0) stats_.blocked_keys.Decrement();
  f->attempts = 0;
  free_.push_back(f);
  --inflight_;
  if ((stopping_ || reconfigure_) && inflight_ == 0 && !closed_) {
    // Not from here: this may run inside a librdkafka callback.
    boost::asio::post(io_, [this, alive = std::weak_ptr<char>(alive_)] {
      if (!alive.expired()) maybeFinishStop();
    });
  }
}

// The last failure, for /status: what an operator asks first about a pipeline that is stuck.
void Worker::noteError(const InFlight* f, std::string_view stage_name, std::string_view reason) {
  last_error_.assign(stage_name).append(": ").append(reason);
  last_error_ += " (" + positionOf(f) + ")";
  last_error_at_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
}

PipelineStatus Worker::status() const {
  PipelineStatus s;
  s.name = spec_.name;
  s.input_topic = spec_.input.topic;
  s.group = spec_.input.group;
  s.output = sink_ ? sink_->describe() : spec_.output.topic;
  s.why = readiness();
  s.state = !fatal_error_.empty() ? "unhealthy"
            : stopping_           ? "stopping"
            : !joined_            ? "joining"
                                  : "running";
  s.status = observe::statusName(pipeline_status_);
  s.store = session_ ? store_name_ : "";
  s.ok = stats_.ok.Value();
  s.invalid = stats_.invalid.Value();
  s.duplicate = stats_.duplicate.Value();
  s.error = stats_.error.Value();
  s.inflight = inflight_;
  s.blocked = static_cast<size_t>(stats_.blocked_keys.Value());
  s.oldest_blocked_seconds = stats_.oldest_blocked.Value();
  s.last_error = last_error_;
  s.last_error_at_ms = last_error_at_ms_;
  for (const auto& [partition, state] : partitions_) {
    PartitionStatus p;
    p.partition = partition;
    p.status = observe::statusName(state->current);
    int64_t position = state->tracker.commitPosition();
    p.committed = position == CommitTracker::kUnknown ? -1 : position;
    p.lag_messages = static_cast<int64_t>(state->lag.Value());
    p.lag_seconds = state->lag_seconds.Value();
    if (state->headroom != nullptr) p.retention_headroom_seconds = state->headroom->Value();
    p.pending = state->scheduler.pending();
    p.paused = state->paused;
    s.partitions.push_back(std::move(p));
  }
  std::sort(s.partitions.begin(), s.partitions.end(),
            [](const auto& a, const auto& b) { return a.partition < b.partition; });
  return s;
}

void Worker::logRateLimited(const char* what, const std::string& detail) {
  auto now = std::chrono::steady_clock::now();
  if (now - last_warning_ < kWarningInterval) {
    ++suppressed_warnings_;
    return;
  }
  log::warn(what,
            {{"pipeline", spec_.name}, {"detail", detail}, {"suppressed", suppressed_warnings_}});
  last_warning_ = now;
  suppressed_warnings_ = 0;
}

}  // namespace kpipe::pipeline
