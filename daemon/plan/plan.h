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
// The per-partition throughput and W are given, or measured with `--measure PIPELINE`
// (measure.h): the pipeline's real worker against an embedded broker for a few seconds.
//
// Pure functions, planCommand() with --measure aside; thread-safe.

#include <cstdint>
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

// What `kpipe plan --measure` found (measure.h), shown with the plan.
struct Measurement {
  std::string pipeline;
  std::string config_file;
  std::string sample_source;  // "samples.jsonl", "the cases of x.test.yaml that expect ..."
  size_t samples = 0;
  double sample_bytes = 0;  // average key + value + headers of the samples
  std::string ids;          // how message ids were made fresh, one sentence
  std::string keys;         // how ordering keys were chosen
  std::string store;        // the dedup store measured with; "" without dedup
  std::string output;       // where the output went
  double seconds = 0;       // the throughput window
  uint64_t messages = 0;    // done in it
  uint64_t ok = 0, invalid = 0, duplicate = 0, error = 0;  // kpipe_messages_total, in it
  double per_partition = 0;                                // messages / seconds
  // W, read → acknowledged, measured afterwards at latency_load (msg/s: the rate above ÷ the
  // headroom, the load the plan gives each partition).
  double latency_load = 0;
  uint64_t latency_messages = 0;
  std::optional<double> latency_mean, latency_p50, latency_p99;
  std::vector<std::string> notes;
  std::vector<std::string> warnings;
};

// Nullopt-free inputs are checked: an error names the flag and the reason.
std::variant<Plan, std::string> compute(const Inputs& inputs);

// `measured`, when given, is shown first (text) or as "measurement" (JSON).
std::string text(const Inputs& inputs, const Plan& plan, const Measurement* measured = nullptr);
std::string json(const Inputs& inputs, const Plan& plan, const Measurement* measured = nullptr);

// `--measure PIPELINE` and the flags that go with it.
struct MeasureOptions {
  std::string pipeline;
  // `kpipe run` and `kpipe check` take the config as an argument; the systemd unit and the
  // container image give them this one.
  std::string config = "/etc/kpipe/kpipe.yaml";
  std::optional<std::string> sample;  // JSON Lines; default: the pipeline's `kpipe test` cases
  double seconds = 5;                 // the throughput window (the latency one is half of it)
  uint64_t keys = 10'000;             // distinct ordering keys; 0: as in the samples
  bool use_store = false;   // the configured dedup store (Redis, LMDB) instead of a memory one
  bool allow_http = false;  // an output.http pipeline sends to its real endpoint
};

struct Args {
  Inputs inputs;
  bool json = false;
  std::optional<MeasureOptions> measure;
  bool message_size_given = false;
  bool latency_given = false;
};
struct ArgsError {
  std::string message;
  bool usage = false;  // show the usage after it
};
std::variant<Args, ArgsError> parseArgs(const std::vector<std::string_view>& args);

inline constexpr std::string_view kUsage =
    "usage: kpipe plan --throughput MSG/S --message-size SIZE --per-partition MSG/S\n"
    "                  [--latency DURATION] [--brokers N] [--replication-factor N]\n"
    "                  [--retention DURATION] [--headroom X] [--current-partitions N]\n"
    "                  [--unkeyed] [--json]\n"
    "       kpipe plan --throughput MSG/S --measure PIPELINE [--config PATH] [--sample FILE]\n"
    "                  [--seconds N|DURATION] [--keys N|sample] [--use-store] [--allow-http]\n"
    "                  [--message-size SIZE] [--latency DURATION] [the other flags above]\n";

// `kpipe plan ...` (kUsage). Returns the exit code: 0, 1 when --measure failed, 2 bad usage,
// 130 when SIGINT or SIGTERM interrupted --measure.
int planCommand(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err);

}  // namespace kpipe::plan
