#pragma once
// The daemon's Prometheus metrics (names from DESIGN.md §5).
//
// One Metrics per daemon owns the registry and the metric families. Each pipeline builds its
// PipelineStats once (labels bound once), so hot paths hold Counter& and never look up by name.
// prometheus-cpp counters and gauges are thread-safe; family Add/Remove takes a lock.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

namespace kpipe::observe {

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Prometheus text exposition format 0.0.4 of every metric.
  std::string serialize() const;
  prometheus::Registry& registry() { return *registry_; }

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& messages;         // kpipe_messages_total
  prometheus::Family<prometheus::Counter>& errors;           // kpipe_errors_total
  prometheus::Family<prometheus::Counter>& retries;          // kpipe_retries_total
  prometheus::Family<prometheus::Gauge>& oldest_blocked;     // kpipe_oldest_blocked_seconds
  prometheus::Family<prometheus::Gauge>& lag_messages;       // kpipe_consumer_lag_messages
  prometheus::Family<prometheus::Gauge>& lag_seconds;        // kpipe_consumer_lag_seconds
  prometheus::Family<prometheus::Gauge>& consumer_status;    // kpipe_consumer_status
  prometheus::Family<prometheus::Gauge>& partition_status;   // kpipe_partition_status
  prometheus::Family<prometheus::Histogram>& processing;     // kpipe_processing_seconds
  prometheus::Family<prometheus::Histogram>& end_to_end;     // kpipe_end_to_end_seconds
  prometheus::Family<prometheus::Histogram>& sink_seconds;   // kpipe_sink_seconds
  prometheus::Family<prometheus::Histogram>& store_seconds;  // kpipe_store_seconds
  prometheus::Family<prometheus::Gauge>& committed_offset;   // kpipe_committed_offset
  prometheus::Family<prometheus::Gauge>& inflight;           // kpipe_inflight_messages
  prometheus::Family<prometheus::Gauge>& assigned;           // kpipe_assigned_partitions
  prometheus::Family<prometheus::Gauge>& queue_depth;        // kpipe_queue_depth
  prometheus::Family<prometheus::Gauge>& paused;             // kpipe_paused_partitions
  prometheus::Family<prometheus::Gauge>& blocked_keys;       // kpipe_blocked_keys
  prometheus::Family<prometheus::Gauge>& topic_partitions;   // kpipe_topic_partitions
  prometheus::Family<prometheus::Counter>& partition_count_changes;
  prometheus::Family<prometheus::Gauge>& retention_headroom;     // kpipe_retention_headroom_seconds
  prometheus::Family<prometheus::Counter>& rewinds;              // kpipe_partition_rewinds_total
  prometheus::Family<prometheus::Counter>& config_reloads;       // kpipe_config_reloads_total
  prometheus::Family<prometheus::Gauge>& config_reload_seconds;  // kpipe_config_reload_seconds
  // ^ kpipe_partition_count_changes_total
  prometheus::Family<prometheus::Gauge>& build_info;  // kpipe_build_info
};

// Histogram buckets (seconds).
extern const prometheus::Histogram::BucketBoundaries kLatencyBuckets;
extern const prometheus::Histogram::BucketBoundaries kEndToEndBuckets;

// Observations of one histogram gathered on one thread and added in one call: prometheus-cpp
// 1.0's Histogram::Observe locks the histogram's mutex and changes two atomics, which per
// message was 3-4% of the io thread in the end-to-end benchmark. A scrape sees what was gathered
// once flush() added it. Buckets as Observe chooses them (the first boundary >= the value).
// Not thread-safe: one owner, who flushes at the end of each batch of work.
class HistogramBatch {
 public:
  HistogramBatch(prometheus::Histogram& histogram,
                 const prometheus::Histogram::BucketBoundaries& boundaries);
  void observe(double value);
  void flush();

 private:
  prometheus::Histogram& histogram_;
  const prometheus::Histogram::BucketBoundaries& boundaries_;
  std::vector<double> counts_;  // one per boundary, then +Inf
  double sum_ = 0;
  bool empty_ = true;
};

// Counters of one pipeline, labels bound once.
struct PipelineStats {
  PipelineStats(Metrics& metrics, const std::string& pipeline);
  prometheus::Counter& ok;            // written to the output topic
  prometheus::Counter& invalid;       // routed to the error topic (non-blocking failure)
  prometheus::Counter& duplicate;     // a seen id: audit topic or dropped
  prometheus::Counter& error;         // refused by the sink, or retries exhausted: error topic
  prometheus::Counter& retries;       // retries scheduled after blocking failures
  prometheus::Gauge& oldest_blocked;  // seconds the oldest message held by a blocking failure
                                      // has waited (0: none)
  prometheus::Histogram& processing;  // read by kpipe → done, per message
  prometheus::Histogram& end_to_end;  // message timestamp → done
  prometheus::Gauge& inflight;        // consumed and not yet acknowledged
  prometheus::Gauge& assigned;        // partitions currently assigned
  // Depth of each queue a message can wait in, in messages.
  prometheus::Gauge& consumer_queue;  // fetched by librdkafka, not yet handed to kpipe
  prometheus::Gauge& blocked_queue;   // routed, waiting for room in the producer queue
  prometheus::Gauge& producer_queue;  // handed to librdkafka, not yet acknowledged
  prometheus::Gauge& waiting_queue;   // consumed, waiting for an earlier message of its key
                                      // (or a concurrency slot) to finish
  prometheus::Gauge& paused;          // input partitions paused (bound reached or producer full)
  prometheus::Gauge& blocked_keys;    // keys held back by a message waiting to be retried
};

}  // namespace kpipe::observe
