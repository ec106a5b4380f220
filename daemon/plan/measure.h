#pragma once
// `kpipe plan --measure PIPELINE`: measures what one partition of a pipeline sustains, with the
// pipeline's real worker (pipeline/worker.h: the router, schemas, dedup store and producer of
// `kpipe run`), on an embedded broker started for it, so that nothing reaches the user's
// brokers or topics.
//
//   1. The config is loaded and validated as `kpipe check` does; PIPELINE is taken from it.
//   2. An embedded broker (kafka/embedded_broker.h) gets a one-partition input topic and
//      private output, error and audit topics; the pipeline's spec is pointed at them (and at
//      its own consumer group and dedup namespace, "plan-measure.PIPELINE").
//   3. A feeder (a producer on a thread of its own) writes copies of the samples (samples.h:
//      fresh ids, keys from a pool) into the input topic, keeping half a second of the
//      worker's rate ahead of it (at most 3 MiB: the embedded broker keeps ~5 MB a partition).
//   4. Once the worker has joined and done its first messages, and after a short warm-up, the
//      messages done in `seconds` (kpipe_messages_total) give the per-partition throughput.
//   5. Then the feeder holds until the worker has drained the backlog, paces itself to that
//      rate ÷ headroom (the load the plan gives each partition), and kpipe_processing_seconds
//      over max(1, seconds / 2) gives W (read → acknowledged): at full speed W would mostly
//      measure the backlog kpipe holds (max_pending).
// The report also says what bounded the rate: the worker's thread busy, waiting for a CPU
// (/proc/thread-self/schedstat), or waiting for acknowledgements with all it may hold in flight.
//
// Dedup store: a memory store (with the configured ttl) unless use_store (--use-store); then the
// configured one, which must answer (Redis: ids under the measurement's namespace; LMDB: a
// scratch database beside the configured one, removed afterwards), with its ttl and
// reservation_ttl cut to 10 minutes; the report says how many ids were written to it. A
// configured memory store is used as it is. An output.http pipeline is refused unless
// allow_http: the samples would go to the real endpoint.
//
// SIGINT and SIGTERM are handled while it runs: the measurement stops cleanly (the scratch
// database is removed) and the result is the error kInterrupted (`kpipe plan` exits 130).
//
// Blocking; runs its own io_context on the calling thread, plus the feeder's thread and
// librdkafka's. Logs warnings and errors (observe/log.h) to stderr; progress goes to `progress`.

#include "daemon/plan/plan.h"

#include <iosfwd>
#include <string>
#include <string_view>
#include <variant>

namespace kpipe::plan {

// The error measure() returns when SIGINT or SIGTERM stopped it.
inline constexpr std::string_view kInterrupted = "interrupted";

std::variant<Measurement, std::string> measure(const MeasureOptions& options, double headroom,
                                               std::ostream& progress);

}  // namespace kpipe::plan
