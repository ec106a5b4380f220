#include "daemon/observe/consumer_status.h"

#include <algorithm>

// Burrow's rules, as read in linkedin/Burrow (commits named by their first 7 hex digits):
//   core/internal/evaluator/caching.go (d327a3e)  calculatePartitionStatus, the rule functions
//   core/internal/storage/inmemory.go  (62a851a)  addConsumerOffset,
//       mergeFrequentCommitIntoPrevious, addBrokerOffset, fetchConsumer (current lag)
//   core/protocol/evaluator.go         (13c9e4c)  StatusConstant (the order of severity)
// Older Burrow checked STOP only when Rule 1 failed; this follows the newer order below.
//
// calculatePartitionStatus, which evaluate() follows step by step:
//   if current lag > 0:
//     if offsetsStopped(now) && !recentLagZero  -> STOP     (checked first: an old zero lag in
//                                                            the window must not hide a stop)
//     if lagAlwaysNotZero:                                   (Rule 1: a zero lag anywhere in the
//                                                            window means the period is OK)
//       if offsetsRewind        -> REWIND  (Rule 2)
//       if offsetsStalled       -> STALL   (Rule 4)
//       if lagNotDecreasing     -> WARN    (Rule 5)
//   OK
//
// Where kpipe's data differs from Burrow's, and what was chosen:
// - Burrow's ring holds every commit the group makes, repeats of an unchanged offset included
//   (a consumer auto-commits its position periodically); Rule 4, "committing offsets that do
//   not change", can only fire because of those repeats. kpipe's own commits happen only when
//   the position moves, so a ring of commits would make STALL impossible and report a consumer
//   stuck on a blocking retry as STOP. The window therefore keeps every sample: each is kpipe's
//   report of its commit position, the counterpart of a Burrow commit. STALL then means "kpipe
//   runs and samples, but the position is stuck"; STOP means "the samples stopped".
// - Burrow's current lag is the latest broker offset minus the last commit (fetchConsumer); here
//   it is the newest sample's lag, the last known one when samples have stopped. Burrow's
//   broker-offset ring (the last `intervals` refreshes) is the high watermarks of the last
//   `intervals` samples. Negative lags count as 0, as in addConsumerOffset.
// - Burrow evaluates a ring with a single commit (and then calls it STALL, or STOP once any
//   time has passed); a window of fewer than 2 samples is Ok here: nothing to compare yet,
//   e.g. a partition just assigned.
// - Burrow's lag can be nil for back-filled commits; kpipe's samples come in order and always
//   carry a lag, so every lag takes part.
//
// An idle partition that is caught up is Ok however long nothing moves: its current lag is 0,
// and the first test of calculatePartitionStatus is "If the current lag is zero, the partition
// is never in error".

namespace kpipe::observe {
namespace {

using Samples = std::deque<OffsetSample>;

// Rule 1 (isLagAlwaysNotZero): a zero lag anywhere in the window makes the period OK.
bool lagAlwaysNotZero(const Samples& s) {
  return std::none_of(s.begin(), s.end(), [](const OffsetSample& x) { return x.lag == 0; });
}

// Rule 2 (checkIfOffsetsRewind): the commit position decreased from one sample to the next.
bool offsetsRewind(const Samples& s) {
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i].offset < s[i - 1].offset) return true;
  }
  return false;
}

// Rule 3 (checkIfOffsetsStopped): the time since the newest sample is longer than the window
// spans (newest minus oldest).
bool offsetsStopped(const Samples& s, std::chrono::steady_clock::time_point now) {
  return (now - s.back().time) > (s.back().time - s.front().time);
}

// Rule 4 (checkIfOffsetsStalled): the position never changed. Only reached with lag, as in
// Burrow (Rule 1 ruled out a zero lag).
bool offsetsStalled(const Samples& s) {
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i].offset != s[i - 1].offset) return false;
  }
  return true;
}

// Rule 5 (checkIfLagNotDecreasing): the lag never went down from one sample to the next
// (equal counts as not decreasing).
bool lagNotDecreasing(const Samples& s) {
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i].lag < s[i - 1].lag) return false;
  }
  return true;
}

// checkIfRecentLagZero: the newest position had reached the high watermark of some recent
// sample, i.e. the consumer was caught up moments ago and new messages just arrived; this
// holds a stop back until the window has moved on.
bool recentLagZero(const Samples& s, const std::deque<int64_t>& high_watermarks) {
  const int64_t last_offset = s.back().offset;
  return std::any_of(high_watermarks.begin(), high_watermarks.end(),
                     [last_offset](int64_t hw) { return hw <= last_offset; });
}

}  // namespace

const char* statusName(ConsumerStatus status) {
  switch (status) {
    case ConsumerStatus::Ok:
      return "ok";
    case ConsumerStatus::Warn:
      return "warn";
    case ConsumerStatus::Error:
      return "error";
    case ConsumerStatus::Stop:
      return "stop";
    case ConsumerStatus::Stall:
      return "stall";
    case ConsumerStatus::Rewind:
      return "rewind";
  }
  return "unknown";  // not a value of the enum: a bug in the caller
}

ConsumerStatus worst(const std::vector<ConsumerStatus>& statuses) {
  ConsumerStatus result = ConsumerStatus::Ok;
  for (ConsumerStatus s : statuses) result = std::max(result, s);
  return result;
}

ConsumerStatus groupStatus(const std::vector<ConsumerStatus>& statuses) {
  // evaluateConsumerStatus: "If the partition status is greater than StatusError, we just mark
  // it as StatusError".
  return std::min(worst(statuses), ConsumerStatus::Error);
}

PartitionStatusWindow::PartitionStatusWindow(StatusWindowOptions options) : options_(options) {
  // Fewer than 2 samples can never be judged: such a window would always say Ok.
  options_.intervals = std::max<std::size_t>(options_.intervals, 2);
}

void PartitionStatusWindow::record(const OffsetSample& sample) {
  OffsetSample s = sample;
  s.lag = std::max<int64_t>(s.lag, 0);

  // Every sample counts as a recent high watermark, merged or not (Burrow refreshes broker
  // offsets on its own schedule, independent of commits).
  high_watermarks_.push_back(s.high_watermark);
  if (high_watermarks_.size() > options_.intervals) high_watermarks_.pop_front();

  // mergeFrequentCommitIntoPrevious: a sample closer than min_distance to the newest one
  // replaces it but keeps its time; taking the new time would let samples more frequent than
  // min_distance merge forever and never fill the window.
  if (!samples_.empty() && (s.time - samples_.back().time) < options_.min_distance) {
    s.time = samples_.back().time;
    samples_.back() = s;
    return;
  }
  samples_.push_back(s);
  if (samples_.size() > options_.intervals) samples_.pop_front();
}

ConsumerStatus PartitionStatusWindow::evaluate(std::chrono::steady_clock::time_point now) const {
  if (samples_.size() < 2) return ConsumerStatus::Ok;  // nothing to compare yet
  // evaluatePartitionStatus: below the completeness threshold the status stays OK.
  const double complete =
      static_cast<double>(samples_.size()) / static_cast<double>(options_.intervals);
  if (complete < options_.minimum_complete) return ConsumerStatus::Ok;

  // calculatePartitionStatus: with no current lag the partition is never in error. (Here Rule 1
  // and recentLagZero would also say so, as the newest sample is in both windows; kept as
  // Burrow's first test.)
  if (samples_.back().lag == 0) return ConsumerStatus::Ok;
  if (offsetsStopped(samples_, now) && !recentLagZero(samples_, high_watermarks_)) {
    return ConsumerStatus::Stop;
  }
  if (lagAlwaysNotZero(samples_)) {
    // In order of severity, the worst first; the first that holds wins.
    if (offsetsRewind(samples_)) return ConsumerStatus::Rewind;
    if (offsetsStalled(samples_)) return ConsumerStatus::Stall;
    if (lagNotDecreasing(samples_)) return ConsumerStatus::Warn;
  }
  return ConsumerStatus::Ok;
}

}  // namespace kpipe::observe
