#include "daemon/observe/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace kpipe::observe {

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

PipelineStats::PipelineStats(Metrics& metrics, const std::string& pipeline)
    : ok(metrics.messages.Add({{"pipeline", pipeline}, {"outcome", "ok"}})),
      invalid(metrics.messages.Add({{"pipeline", pipeline}, {"outcome", "invalid"}})),
      duplicate(metrics.messages.Add({{"pipeline", pipeline}, {"outcome", "duplicate"}})),
      error(metrics.messages.Add({{"pipeline", pipeline}, {"outcome", "error"}})),
      retries(metrics.retries.Add({{"pipeline", pipeline}})),
      oldest_blocked(metrics.oldest_blocked.Add({{"pipeline", pipeline}})),
      inflight(metrics.inflight.Add({{"pipeline", pipeline}})),
      assigned(metrics.assigned.Add({{"pipeline", pipeline}})),
      consumer_queue(metrics.queue_depth.Add({{"pipeline", pipeline}, {"queue", "consumer"}})),
      blocked_queue(metrics.queue_depth.Add({{"pipeline", pipeline}, {"queue", "blocked"}})),
      producer_queue(metrics.queue_depth.Add({{"pipeline", pipeline}, {"queue", "producer"}})),
      waiting_queue(metrics.queue_depth.Add({{"pipeline", pipeline}, {"queue", "waiting"}})),
      paused(metrics.paused.Add({{"pipeline", pipeline}})),
      blocked_keys(metrics.blocked_keys.Add({{"pipeline", pipeline}})) {}

}  // namespace kpipe::observe
