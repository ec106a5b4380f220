#pragma once
// `kpipe plan`: sizing a topic and its consumers from measured numbers (DESIGN.md §1.10).
//
//   partitions  = target throughput × headroom / per-partition throughput (rounded up, then to
//                 a multiple of the broker count so that leadership spreads evenly)
//   in flight   = Little's law, L = λ · W (λ: target throughput, W: time a message is in flight)
//   disk        = λ · message size · retention · replication factor
// with warnings for a partition count the cluster should not carry (over ~100 per broker and
// replica) and for adding partitions to a keyed topic (key order breaks across the change).
//
// Pure functions; thread-safe.

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kpipe::plan {

struct Inputs {
  double throughput = 0;     // target, messages per second (λ)
  double message_bytes = 0;  // average value + key + headers
  double per_partition = 0;  // messages per second one partition's consumer sustains (measured)
  std::optional<double> latency_seconds;  // W: read → acknowledged, per message
  int brokers = 3;
  int replication_factor = 3;
  double retention_seconds = 7 * 24 * 3600.0;
  double headroom = 1.5;  // capacity over the target: peaks, and catching up after an outage
  std::optional<int> current_partitions;
  bool keyed = true;
};

struct Plan {
  int partitions_needed = 0;  // before rounding to the broker count
  int partitions = 0;
  int consumers = 0;                          // at most one per partition is busy
  std::optional<double> inflight;             // L = λ · W
  std::optional<int> inflight_per_partition;  // for the pipeline's concurrency / max_pending
  double ingress_bytes_per_second = 0;        // λ · size, before replication
  double disk_bytes = 0;                      // whole cluster, replicas included
  double disk_bytes_per_broker = 0;
  double catch_up_seconds_per_hour = 0;  // time to work off one hour of backlog
  std::vector<std::string> warnings;
};

// Nullopt-free inputs are checked: an error names the flag and the reason.
std::variant<Plan, std::string> compute(const Inputs& inputs);

std::string text(const Inputs& inputs, const Plan& plan);
std::string json(const Inputs& inputs, const Plan& plan);

// `kpipe plan --throughput N --message-size SIZE --per-partition N [--latency DURATION]
// [--brokers N] [--replication-factor N] [--retention DURATION] [--headroom X]
// [--current-partitions N] [--unkeyed] [--json]`. Returns the exit code.
int planCommand(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err);

}  // namespace kpipe::plan
