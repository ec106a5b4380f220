#pragma once
// Burrow-style consumer status of one input partition: tells a consumer that keeps up from one
// that lags, is stuck or has stopped, without lag thresholds (DESIGN.md §1.9; the metric
// kpipe_consumer_status of §5).
//
// The rules are Burrow's (linkedin/Burrow, core/internal/evaluator/caching.go,
// calculatePartitionStatus), applied to a window kept like Burrow's offset ring
// (core/internal/storage/inmemory.go, addConsumerOffset); consumer_status.cpp maps each rule to
// the Burrow function it follows and says where kpipe differs.
//
// Usage: one PartitionStatusWindow per assigned partition, made new on each assignment (a
// partition that comes back must not be judged on the previous owner's history). record()
// every lag sample of the partition (the worker samples its commit position and the high
// watermark about once a second, whether or not the position moved: each sample is kpipe's
// report of its position, as a Kafka consumer's periodic commit is to Burrow). evaluate(now)
// whenever the status is wanted. To see STOP (the samples themselves stopped), evaluate on
// another clock tick than the one that records, e.g. at scrape time.
//
// Time is std::chrono::steady_clock: the rules only compare intervals between samples and
// "now", and a wall-clock step (NTP) must not fake or hide a stop.
//
// Threading: not thread-safe. record() and evaluate() of one window must not run concurrently
// (both on the pipeline's io thread, or under the caller's lock). The free functions are pure.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace kpipe::observe {

// In order of severity, with Burrow's numbers (core/protocol/evaluator.go, StatusConstant:
// OK 1, WARN 2, ERR 3, STOP 4, STALL 5, REWIND 6), so a gauge of the number reads as Burrow's.
enum class ConsumerStatus : int {
  Ok = 1,      // keeping up, or not enough data to say otherwise
  Warn = 2,    // committing, but the lag did not go down anywhere in the window (slow)
  Error = 3,   // group level only: some partition is stop, stall or rewind (groupStatus())
  Stop = 4,    // no sample for longer than the window spans, with lag
  Stall = 5,   // sampled, but the commit position did not move over the window, with lag
  Rewind = 6,  // the commit position went backwards within the window
};

inline constexpr std::array<ConsumerStatus, 6> kConsumerStatuses = {
    ConsumerStatus::Ok,   ConsumerStatus::Warn,  ConsumerStatus::Error,
    ConsumerStatus::Stop, ConsumerStatus::Stall, ConsumerStatus::Rewind};

// "ok", "warn", "error", "stop", "stall", "rewind": the metric's label values.
const char* statusName(ConsumerStatus status);

// The most severe of the statuses (the order of the enum); Ok for none. Keeps the detail, for a
// per-pipeline status.
ConsumerStatus worst(const std::vector<ConsumerStatus>& statuses);

// Burrow's consumer-group status (caching.go, evaluateConsumerStatus): the worst partition
// status, where stop, stall and rewind count as Error. Ok for none.
ConsumerStatus groupStatus(const std::vector<ConsumerStatus>& statuses);

// One sample of a partition, taken by the worker.
struct OffsetSample {
  std::chrono::steady_clock::time_point time;
  int64_t offset = 0;          // the commit position kpipe stores (next offset to consume)
  int64_t high_watermark = 0;  // the partition's high watermark when sampled
  int64_t lag = 0;             // high_watermark - offset; a negative value counts as 0
};

// The window's shape, named after Burrow's settings.
struct StatusWindowOptions {
  // Samples kept, at least 2 (Burrow: storage "intervals", default 10). At one sample a second
  // and min_distance 0 the window spans about 10 s.
  std::size_t intervals = 10;
  // A sample closer than this to the newest kept one replaces it, keeping that one's time
  // (Burrow: storage "min-distance", default 0). Widens the window's span without more samples.
  std::chrono::milliseconds min_distance{0};
  // Fraction of `intervals` that must be filled before any rule applies; below it the status
  // is Ok (Burrow: evaluator "minimum-complete", default 0).
  double minimum_complete = 0;
};

class PartitionStatusWindow {
 public:
  explicit PartitionStatusWindow(StatusWindowOptions options = {});

  // Samples must come in time order.
  void record(const OffsetSample& sample);

  // The partition's status at `now` (normally steady_clock::now()).
  ConsumerStatus evaluate(std::chrono::steady_clock::time_point now) const;

  // Samples in the window (at most options.intervals).
  std::size_t size() const { return samples_.size(); }

 private:
  StatusWindowOptions options_;
  std::deque<OffsetSample> samples_;     // oldest first; lag already clamped at 0
  std::deque<int64_t> high_watermarks_;  // of the last `intervals` samples, merged or not
};

}  // namespace kpipe::observe
