#include "daemon/observe/metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <sstream>

namespace kpipe::observe {

// Millisecond pipelines: from 100 µs to 30 s. End to end also covers backlogs (up to an hour).
const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
const prometheus::Histogram::BucketBoundaries kEndToEndBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      messages(prometheus::BuildCounter()
                   .Name("kpipe_messages_total")
                   .Help("Messages done, by outcome: ok (output), invalid (error topic: the "
                         "message is bad), duplicate (audit topic or dropped), error (error topic: "
                         "refused by the sink or retries exhausted).")
                   .Register(*registry_)),
      errors(prometheus::BuildCounter()
                 .Name("kpipe_errors_total")
                 .Help("Failures by class and stage: non_blocking and exhausted ones are written "
                       "to the error topic; blocking ones (a dependency down) are counted per "
                       "failed attempt and retried.")
                 .Register(*registry_)),
      retries(prometheus::BuildCounter()
                  .Name("kpipe_retries_total")
                  .Help("Retries scheduled after blocking failures.")
                  .Register(*registry_)),
      oldest_blocked(prometheus::BuildGauge()
                         .Name("kpipe_oldest_blocked_seconds")
                         .Help("How long the oldest message held by a blocking failure has been "
                               "waiting (0 when none is).")
                         .Register(*registry_)),
      lag_messages(prometheus::BuildGauge()
                       .Name("kpipe_consumer_lag_messages")
                       .Help("High watermark minus the committed position, per partition.")
                       .Register(*registry_)),
      lag_seconds(prometheus::BuildGauge()
                      .Name("kpipe_consumer_lag_seconds")
                      .Help("Age of the oldest message of the partition not yet done (its "
                            "timestamp to now); 0 when caught up.")
                      .Register(*registry_)),
      consumer_status(prometheus::BuildGauge()
                          .Name("kpipe_consumer_status")
                          .Help("1 for the pipeline's current status (Burrow's rules over its "
                                "partitions: ok, warn, error), 0 for the others.")
                          .Register(*registry_)),
      partition_status(prometheus::BuildGauge()
                           .Name("kpipe_partition_status")
                           .Help("1 for the partition's current status (Burrow's rules over "
                                 "the last minute: ok, warn, stall, stop, rewind), 0 for the "
                                 "others.")
                           .Register(*registry_)),
      processing(prometheus::BuildHistogram()
                     .Name("kpipe_processing_seconds")
                     .Help("Per message, from being read by kpipe to its effect being "
                           "acknowledged (waiting for its key included).")
                     .Register(*registry_)),
      end_to_end(prometheus::BuildHistogram()
                     .Name("kpipe_end_to_end_seconds")
                     .Help("Per message, from its Kafka timestamp to its effect being "
                           "acknowledged.")
                     .Register(*registry_)),
      sink_seconds(prometheus::BuildHistogram()
                       .Name("kpipe_sink_seconds")
                       .Help("Per write to the output (sink kafka: produce to delivery report; "
                             "sink http: one request), failed attempts included.")
                       .Register(*registry_)),
      store_seconds(prometheus::BuildHistogram()
                        .Name("kpipe_store_seconds")
                        .Help("Per dedup store operation (op reserve, confirm, release), from "
                              "request to answer: waiting for the store's batch included; "
                              "failed ones included.")
                        .Register(*registry_)),
      committed_offset(prometheus::BuildGauge()
                           .Name("kpipe_committed_offset")
                           .Help("Next offset to consume as stored for commit, per partition.")
                           .Register(*registry_)),
      inflight(prometheus::BuildGauge()
                   .Name("kpipe_inflight_messages")
                   .Help("Messages consumed whose effects are not yet acknowledged.")
                   .Register(*registry_)),
      assigned(prometheus::BuildGauge()
                   .Name("kpipe_assigned_partitions")
                   .Help("Input partitions currently assigned to this process.")
                   .Register(*registry_)),
      queue_depth(prometheus::BuildGauge()
                      .Name("kpipe_queue_depth")
                      .Help("Messages waiting in each queue of a pipeline (consumer, waiting, "
                            "blocked, producer).")
                      .Register(*registry_)),
      paused(prometheus::BuildGauge()
                 .Name("kpipe_paused_partitions")
                 .Help("Input partitions kpipe is not reading because their pending messages "
                       "reached max_pending or the producer queue is full.")
                 .Register(*registry_)),
      blocked_keys(prometheus::BuildGauge()
                       .Name("kpipe_blocked_keys")
                       .Help("Keys held back by a message that failed with a blocking error and "
                             "waits to be retried.")
                       .Register(*registry_)),
      topic_partitions(prometheus::BuildGauge()
                           .Name("kpipe_topic_partitions")
                           .Help("Partition count of each input and output topic, as last seen "
                                 "in the cluster metadata.")
                           .Register(*registry_)),
      partition_count_changes(prometheus::BuildCounter()
                                  .Name("kpipe_partition_count_changes_total")
                                  .Help("Partition count changes seen on an input or output "
                                        "topic: key order across such a change is broken.")
                                  .Register(*registry_)),
      retention_headroom(prometheus::BuildGauge()
                             .Name("kpipe_retention_headroom_seconds")
                             .Help("Time left before the input's retention deletes the oldest "
                                   "message of the partition not yet done: retention.ms (from "
                                   "the broker, else input.retention) minus that message's age. "
                                   "+Inf when the topic keeps data forever.")
                             .Register(*registry_)),
      rewinds(prometheus::BuildCounter()
                  .Name("kpipe_partition_rewinds_total")
                  .Help("Times the commit position of a partition went backwards (offsets reset, "
                        "or an assignment that starts below what was committed before): those "
                        "messages are processed again.")
                  .Register(*registry_)),
      config_reloads(prometheus::BuildCounter()
                         .Name("kpipe_config_reloads_total")
                         .Help("Config reloads (file change or SIGHUP), by result: success (the "
                               "new config runs), failure (an error; the old config still runs, "
                               "or a pipeline could not start: see /status).")
                         .Register(*registry_)),
      config_reload_seconds(prometheus::BuildGauge()
                                .Name("kpipe_config_reload_seconds")
                                .Help("The last successful reload: seconds from the first file "
                                      "change (or SIGHUP) to the new pipelines started.")
                                .Register(*registry_)),
      build_info(prometheus::BuildGauge()
                     .Name("kpipe_build_info")
                     .Help("Always 1; labels carry the kpipe version.")
                     .Register(*registry_)) {}

std::string Metrics::serialize() const {
  prometheus::TextSerializer serializer;
  std::ostringstream out;
  serializer.Serialize(out, registry_->Collect());
  return out.str();
}

HistogramBatch::HistogramBatch(prometheus::Histogram& histogram,
                               const prometheus::Histogram::BucketBoundaries& boundaries)
    : histogram_(histogram), boundaries_(boundaries), counts_(boundaries.size() + 1, 0.0) {}

void HistogramBatch::observe(double value) {
  const auto bucket = std::lower_bound(boundaries_.begin(), boundaries_.end(), value);
  counts_[static_cast<size_t>(bucket - boundaries_.begin())] += 1;
  sum_ += value;
  empty_ = false;
}

void HistogramBatch::flush() {
  if (empty_) return;
  histogram_.ObserveMultiple(counts_, sum_);
  std::fill(counts_.begin(), counts_.end(), 0.0);
  sum_ = 0;
  empty_ = true;
}

PipelineStats::PipelineStats(Metrics& metrics, const std::string& pipeline)
    : ok(metrics.messages.Add({{"pipeline", pipeline}, {"outcome", "ok"}})),
      invalid(metrics.messages.Add({{"pipeline", pipeline}, {"outcome", "invalid"}})),
      duplicate(metrics.messages.Add({{"pipeline", pipeline}, {"outcome", "duplicate"}})),
      error(metrics.messages.Add({{"pipeline", pipeline}, {"outcome", "error"}})),
      retries(metrics.retries.Add({{"pipeline", pipeline}})),
      oldest_blocked(metrics.oldest_blocked.Add({{"pipeline", pipeline}})),
      processing(metrics.processing.Add({{"pipeline", pipeline}}, kLatencyBuckets)),
      end_to_end(metrics.end_to_end.Add({{"pipeline", pipeline}}, kEndToEndBuckets)),
      inflight(metrics.inflight.Add({{"pipeline", pipeline}})),
      assigned(metrics.assigned.Add({{"pipeline", pipeline}})),
      consumer_queue(metrics.queue_depth.Add({{"pipeline", pipeline}, {"queue", "consumer"}})),
      blocked_queue(metrics.queue_depth.Add({{"pipeline", pipeline}, {"queue", "blocked"}})),
      producer_queue(metrics.queue_depth.Add({{"pipeline", pipeline}, {"queue", "producer"}})),
      waiting_queue(metrics.queue_depth.Add({{"pipeline", pipeline}, {"queue", "waiting"}})),
      paused(metrics.paused.Add({{"pipeline", pipeline}})),
      blocked_keys(metrics.blocked_keys.Add({{"pipeline", pipeline}})) {}

}  // namespace kpipe::observe
