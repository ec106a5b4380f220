#pragma once
// `kpipe replay`: re-injects error records (written by a pipeline to its error topic) into a
// topic, normally the pipeline's input, once their cause has been fixed (e.g. a schema that now
// accepts them). Each replayed record has the error record's key and value unchanged and its
// headers minus every `kpipe.*` header (so it looks like the original input), plus
// `kpipe.replay.origin: <error topic>:<partition>:<offset>` to trace it.
//
// The error topic is read from its beginning up to the end offsets it had when replay started
// (records that arrive later are not replayed, so a replay always ends), with an assigned
// consumer that commits nothing. Records are filtered by reason (a regex) and by the time of
// the original message (kpipe.origin.timestamp), and written with an idempotent producer and
// the Java client's partitioner (murmur2_random), as kpipe writes its outputs.
//
// The pure parts (arguments, times, the filter decision, headers, the report) are exposed for
// tests. Everything runs synchronously on the calling thread; thread-compatible.

#include "daemon/pipeline/record_headers.h"

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kpipe::replay {

// Header names kpipe writes on error records (pipeline/record_headers.h) and the one replay
// adds.
inline constexpr std::string_view kHeaderPrefix = pipeline::header::kPrefix;
inline constexpr std::string_view kStageHeader = pipeline::header::kErrorStage;
inline constexpr std::string_view kReasonHeader = pipeline::header::kErrorReason;
inline constexpr std::string_view kValueOmittedHeader = pipeline::header::kErrorValueOmitted;
inline constexpr std::string_view kOriginTopicHeader = pipeline::header::kOriginTopic;
inline constexpr std::string_view kOriginTimestampHeader = pipeline::header::kOriginTimestamp;
inline constexpr std::string_view kReplayOriginHeader = pipeline::header::kReplayOrigin;

// Milliseconds since the Unix epoch.
using Millis = int64_t;
Millis nowMillis();

// Parses a --since/--until value: RFC 3339 ("2026-11-26T10:00:00Z", "2026-11-26T11:00:00.5+01:00")
// or a duration before `now` ("30m", "2h", "7d"; units ms, s, m, h, d). The error message says
// what is accepted.
std::variant<Millis, std::string> parseTime(std::string_view text, Millis now);

// Which error records are replayed. Times are [since, until) on kpipe.origin.timestamp.
class Filter {
 public:
  // An ECMAScript regex, searched for anywhere in kpipe.error.reason. Compiled with libstdc++'s
  // polynomial executor (as schema `pattern`s are): no back-references, but no stack overflow
  // or exponential time on long reasons either. Returns the error message for a bad regex.
  std::optional<std::string> setReason(const std::string& regex);
  bool reasonMatches(std::string_view reason) const;
  bool hasReason() const { return reason_.has_value(); }
  const std::string& reasonSource() const { return reason_source_; }

  std::optional<Millis> since;
  std::optional<Millis> until;

 private:
  std::string reason_source_;
  std::optional<std::regex> reason_;
  std::regex reason_anywhere_;  // `[\s\S]*?(?:reason)[\s\S]*`, for long subjects
};

struct Options {
  std::filesystem::path config;
  std::string from;  // the error topic
  std::string to;    // where to write
  Filter filter;
  bool dry_run = false;
  std::string bootstrap;  // "" = kafka.bootstrap of the config
};

// Parses the arguments after `replay`. Returns a usage error message (without "kpipe replay:")
// for unknown, missing, repeated or bad arguments. Flags take their value as the next argument
// or after `=` (--from=x).
std::variant<Options, std::string> parseArgs(const std::vector<std::string_view>& args, Millis now);

// One record header. A header can have a null value (distinct from an empty one).
struct Header {
  std::string name;
  std::optional<std::string> value;
  bool operator==(const Header&) const = default;
};
using Headers = std::vector<Header>;

// The kpipe headers of an error record that replay looks at. The last header of a name wins:
// kpipe appends its own after the original ones.
struct ErrorRecordHeaders {
  std::optional<std::string> stage;  // a null header value reads as ""
  std::optional<std::string> reason;
  std::optional<std::string> origin_topic;
  std::optional<std::string> origin_timestamp;  // as written: ms since the epoch, -1 for none
  bool value_omitted = false;                   // the value was too large and is not in the record
};
ErrorRecordHeaders readErrorHeaders(const Headers& headers);

// Why a record is not replayed; in the order decide() checks them.
enum class SkipReason {
  NotErrorRecord,  // no kpipe.error.stage: not written by kpipe as an error record
  Malformed,       // empty kpipe.error.stage or no kpipe.error.reason
  ValueOmitted,    // kpipe.error.value_omitted: the record has no value to replay
  Reason,          // --reason does not match
  NoTimestamp,     // --since/--until given, kpipe.origin.timestamp missing, garbled or -1
  Since,           // before --since
  Until,           // at or after --until
};
// "by --reason", "not kpipe error records", ... as the report prints them.
const char* skipReasonText(SkipReason reason);

// nullopt: replay it.
std::optional<SkipReason> decide(const ErrorRecordHeaders& headers, const Filter& filter);

// The headers of the replayed record: `original` without any kpipe.* header, in order, plus
// kpipe.replay.origin = `origin`.
Headers replayHeaders(const Headers& original, std::string_view origin);

// What a replay did, and its text on stdout.
struct Report {
  std::string from;
  std::string to;
  bool dry_run = false;
  int32_t partitions = 0;
  uint64_t read = 0;                         // records read from `from`
  std::map<std::string, uint64_t> replayed;  // by stage: delivered (dry run: selected)
  std::map<SkipReason, uint64_t> skipped;    // records not replayed, by why
  uint64_t other_origin = 0;                 // replayed, but kpipe.origin.topic is not `to`
  uint64_t failed = 0;                       // deliveries that failed (or were refused)
  uint64_t replayedTotal() const;
};
// "replay a -> b: read 120 records from 4 partitions\n  replayed 37 (stage schema: 35, ...)\n..."
std::string formatReport(const Report& report);

// Runs a replay: loads the config, reads, filters, writes, waits for every delivery report,
// prints the report on `out` (and, with --dry-run, one line per record it would replay) and
// problems on `err`. Returns the exit code: 0 done, 1 failed (config, Kafka, a failed delivery,
// interrupted by SIGINT/SIGTERM), 2 usage (kafka.bootstrap is embedded and no --bootstrap).
int run(const Options& options, std::ostream& out, std::ostream& err);

}  // namespace kpipe::replay
