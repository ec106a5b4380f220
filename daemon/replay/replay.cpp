// GCC 12 with -fsanitize=address reports a false -Wmaybe-uninitialized inside std::regex's
// std::function members (libstdc++ headers); see schema/pattern.cpp.
#if defined(__SANITIZE_ADDRESS__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "daemon/replay/replay.h"

#include "daemon/config/loader.h"
#include "daemon/kafka/handle.h"
#include "daemon/observe/log.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#ifndef __GLIBCXX__
#error "replay.cpp relies on libstdc++'s polynomial std::regex executor (__polynomial)"
#endif

namespace kpipe::replay {

Millis nowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- times ----

namespace {

// Reads exactly `n` digits at `pos`; advances it.
std::optional<int> digits(std::string_view text, size_t& pos, size_t n) {
  if (pos + n > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = text[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += n;
  return value;
}

bool expect(std::string_view text, size_t& pos, std::string_view chars) {
  if (pos >= text.size() || chars.find(text[pos]) == std::string_view::npos) return false;
  ++pos;
  return true;
}

// RFC 3339 section 5.6: full-date "T" full-time, with "t", "z" and a space allowed as the RFC's
// note says. nullopt: not RFC 3339 at all; a string: it looks like it, but is wrong.
std::optional<std::variant<Millis, std::string>> parseRfc3339(std::string_view text) {
  size_t pos = 0;
  auto year = digits(text, pos, 4);
  if (!year || !expect(text, pos, "-")) return std::nullopt;
  // From here on it is meant as a date: say what is wrong with it.
  const std::string quoted = "\"" + std::string(text) + "\"";
  const std::string form = ": write RFC 3339, e.g. 2026-11-26T10:00:00Z";
  auto month = digits(text, pos, 2);
  if (!month || !expect(text, pos, "-")) return quoted + " is not a time" + form;
  auto day = digits(text, pos, 2);
  if (!day || !expect(text, pos, "Tt ")) return quoted + " is not a time" + form;
  auto hour = digits(text, pos, 2);
  if (!hour || !expect(text, pos, ":")) return quoted + " is not a time" + form;
  auto minute = digits(text, pos, 2);
  if (!minute || !expect(text, pos, ":")) return quoted + " is not a time" + form;
  auto second = digits(text, pos, 2);
  if (!second) return quoted + " is not a time" + form;
  int millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t start = pos;
    int scale = 100;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      millis += (text[pos] - '0') * scale;  // digits past milliseconds are dropped
      scale /= 10;
      ++pos;
    }
    if (pos == start) return quoted + " is not a time" + form;
  }
  int offset_minutes = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    auto off_hour = digits(text, pos, 2);
    if (!off_hour || !expect(text, pos, ":")) return quoted + " is not a time" + form;
    auto off_minute = digits(text, pos, 2);
    if (!off_minute || *off_hour > 23 || *off_minute > 59) {
      return quoted + " has a bad time zone offset" + form;
    }
    offset_minutes = sign * (*off_hour * 60 + *off_minute);
  } else {
    return quoted + " has no time zone: end it with Z (UTC) or an offset such as +01:00";
  }
  if (pos != text.size()) return quoted + " is not a time" + form;

  using namespace std::chrono;
  year_month_day date{std::chrono::year(*year), std::chrono::month(static_cast<unsigned>(*month)),
                      std::chrono::day(static_cast<unsigned>(*day))};
  if (!date.ok()) return quoted + ": no such date";
  // 60 is a leap second: RFC 3339 allows it, Unix time does not count it.
  if (*hour > 23 || *minute > 59 || *second > 60) return quoted + ": no such time of day";
  Millis ms = duration_cast<milliseconds>(sys_days(date).time_since_epoch()).count();
  ms += ((*hour * 60LL + *minute - offset_minutes) * 60 + std::min(*second, 59)) * 1000 + millis;
  return ms;
}

}  // namespace

std::variant<Millis, std::string> parseTime(std::string_view text, Millis now) {
  if (auto rfc3339 = parseRfc3339(text)) return *rfc3339;
  if (auto ago = config::parseDuration(text)) return now - ago->count();
  return "\"" + std::string(text) +
         "\" is not a time: write RFC 3339 (2026-11-26T10:00:00Z) or a duration before now "
         "(30m, 2h, 7d)";
}

// ---- filter ----

namespace {

constexpr auto kRegexFlags = std::regex::ECMAScript | std::regex_constants::__polynomial;
// regex_search tries every start position: O(length^2) on a subject that does not match.
// Longer subjects use one regex_match of `[\s\S]*?(?:regex)[\s\S]*` (as schema/pattern.cpp).
constexpr size_t kSearchMaxBytes = 128;

}  // namespace

std::optional<std::string> Filter::setReason(const std::string& regex) {
  try {
    // The regex alone first: wrapping could turn an invalid one such as `a)(b` valid.
    std::regex compiled(regex, kRegexFlags);
    reason_anywhere_.assign("[\\s\\S]*?(?:" + regex + ")[\\s\\S]*", kRegexFlags);
    reason_ = std::move(compiled);
    reason_source_ = regex;
    return std::nullopt;
  } catch (const std::regex_error& e) {
    if (e.code() == std::regex_constants::error_complexity) {
      return "--reason \"" + regex + "\" uses a back-reference, which is not supported";
    }
    return "--reason \"" + regex + "\" is not a valid regular expression: " + e.what();
  }
}

bool Filter::reasonMatches(std::string_view reason) const {
  if (!reason_) return true;
  try {
    if (reason.size() <= kSearchMaxBytes) {
      return std::regex_search(reason.begin(), reason.end(), *reason_);
    }
    return std::regex_match(reason.begin(), reason.end(), reason_anywhere_);
  } catch (const std::regex_error&) {
    return false;  // too complex to match (error_complexity/error_space): not selected
  }
}

// ---- arguments ----

std::variant<Options, std::string> parseArgs(const std::vector<std::string_view>& args,
                                             Millis now) {
  Options options;
  bool have_config = false;
  std::set<std::string> seen;
  std::optional<std::string> since_text, until_text;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') {
      if (have_config) {
        return "unexpected argument \"" + std::string(arg) + "\" (CONFIG was already given)";
      }
      options.config = std::string(arg);
      have_config = true;
      continue;
    }
    std::string name(arg.substr(0, arg.find('=')));
    std::optional<std::string> inline_value;
    if (name.size() < arg.size()) inline_value = std::string(arg.substr(name.size() + 1));
    static const std::set<std::string> kValued = {"--from",  "--to",    "--reason",
                                                  "--since", "--until", "--bootstrap"};
    if (name == "--dry-run") {
      if (inline_value) return "--dry-run takes no value";
    } else if (!kValued.count(name)) {
      return "unknown argument " + std::string(arg);
    }
    if (!seen.insert(name).second) return name + " given twice";
    if (name == "--dry-run") {
      options.dry_run = true;
      continue;
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = std::string(args[++i]);
    } else {
      return name + " needs a value";
    }
    if (value.empty() && name != "--reason") return name + " needs a non-empty value";
    if (name == "--from") {
      options.from = value;
    } else if (name == "--to") {
      options.to = value;
    } else if (name == "--bootstrap") {
      options.bootstrap = value;
    } else if (name == "--reason") {
      if (auto error = options.filter.setReason(value)) return *error;
    } else {
      auto time = parseTime(value, now);
      if (auto* error = std::get_if<std::string>(&time)) return name + ": " + *error;
      (name == "--since" ? options.filter.since : options.filter.until) = std::get<Millis>(time);
      (name == "--since" ? since_text : until_text) = value;
    }
  }
  if (!have_config) return "missing CONFIG (the kpipe.yaml of the pipeline)";
  if (options.from.empty()) return "missing --from ERROR_TOPIC";
  if (options.to.empty()) return "missing --to TOPIC";
  if (options.from == options.to) {
    return "--from and --to are the same topic (" + options.from +
           "): replay writes error records back to the topic they were read from, normally "
           "the pipeline's input";
  }
  if (options.filter.since && options.filter.until &&
      *options.filter.since >= *options.filter.until) {
    return "--since " + *since_text + " is not before --until " + *until_text +
           ": no record could match";
  }
  return options;
}

// ---- records ----

ErrorRecordHeaders readErrorHeaders(const Headers& headers) {
  ErrorRecordHeaders out;
  for (const auto& h : headers) {
    std::string value = h.value.value_or("");
    if (h.name == kStageHeader) {
      out.stage = std::move(value);
    } else if (h.name == kReasonHeader) {
      out.reason = std::move(value);
    } else if (h.name == kOriginTopicHeader) {
      out.origin_topic = std::move(value);
    } else if (h.name == kOriginTimestampHeader) {
      out.origin_timestamp = std::move(value);
    } else if (h.name == kValueOmittedHeader) {
      out.value_omitted = true;
    }
  }
  return out;
}

const char* skipReasonText(SkipReason reason) {
  switch (reason) {
    case SkipReason::NotErrorRecord:
      return "not kpipe error records";
    case SkipReason::Malformed:
      return "with malformed kpipe headers";
    case SkipReason::ValueOmitted:
      return "without their value (too large)";
    case SkipReason::Reason:
      return "by --reason";
    case SkipReason::NoTimestamp:
      return "without a kpipe.origin.timestamp";
    case SkipReason::Since:
      return "by --since";
    case SkipReason::Until:
      return "by --until";
  }
  return "?";
}

namespace {

std::optional<Millis> parseMillis(const std::optional<std::string>& text) {
  if (!text || text->empty()) return std::nullopt;
  Millis value = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || ptr != text->data() + text->size() || value < 0) return std::nullopt;
  return value;
}

}  // namespace

std::optional<SkipReason> decide(const ErrorRecordHeaders& headers, const Filter& filter) {
  if (!headers.stage) return SkipReason::NotErrorRecord;
  if (headers.stage->empty() || !headers.reason) return SkipReason::Malformed;
  if (headers.value_omitted) return SkipReason::ValueOmitted;
  if (!filter.reasonMatches(*headers.reason)) return SkipReason::Reason;
  if (filter.since || filter.until) {
    auto timestamp = parseMillis(headers.origin_timestamp);
    if (!timestamp) return SkipReason::NoTimestamp;
    if (filter.since && *timestamp < *filter.since) return SkipReason::Since;
    if (filter.until && *timestamp >= *filter.until) return SkipReason::Until;
  }
  return std::nullopt;
}

Headers replayHeaders(const Headers& original, std::string_view origin) {
  Headers out;
  out.reserve(original.size() + 1);
  for (const auto& h : original) {
    if (!std::string_view(h.name).starts_with(kHeaderPrefix)) out.push_back(h);
  }
  out.push_back({std::string(kReplayOriginHeader), std::string(origin)});
  return out;
}

// ---- report ----

uint64_t Report::replayedTotal() const {
  uint64_t total = 0;
  for (const auto& [stage, count] : replayed) total += count;
  return total;
}

namespace {

std::string plural(uint64_t n, std::string_view word) {
  return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

// For a terminal: control bytes escaped, long text cut.
std::string printable(std::string_view text, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max_bytes; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

}  // namespace

std::string formatReport(const Report& r) {
  std::ostringstream s;
  s << "replay " << r.from << " -> " << r.to << (r.dry_run ? " (dry run: nothing written)" : "")
    << ": read " << plural(r.read, "record") << " from " << plural(r.partitions, "partition")
    << "\n";
  std::vector<std::pair<std::string, uint64_t>> stages;
  for (const auto& [stage, count] : r.replayed) {
    if (count > 0) stages.emplace_back(stage, count);
  }
  std::stable_sort(stages.begin(), stages.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  s << (r.dry_run ? "  would replay " : "  replayed ") << r.replayedTotal();
  for (size_t i = 0; i < stages.size(); ++i) {
    s << (i == 0 ? " (stage " : ", ") << printable(stages[i].first, 40) << ": " << stages[i].second;
  }
  s << (stages.empty() ? "" : ")") << "\n";
  std::string skipped;
  for (const auto& [why, count] : r.skipped) {
    if (count == 0) continue;
    skipped += (skipped.empty() ? "" : ", ") + std::to_string(count) + " " + skipReasonText(why);
  }
  if (!skipped.empty()) s << "  skipped  " << skipped << "\n";
  if (r.failed > 0) s << "  failed   " << r.failed << " (not written)\n";
  if (r.other_origin > 0) {
    s << "  note: " << r.other_origin << " of them came from another topic than " << r.to
      << " (kpipe.origin.topic)\n";
  }
  return s.str();
}

// ---- the replay ----

namespace {

namespace log = observe::log;

constexpr int kMetadataTimeoutMs = 10'000;
// Reading stops with an error when nothing arrives for this long (broker gone, no leader).
constexpr std::chrono::seconds kStallTimeout(30);

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void onStopSignal(int) { g_interrupted = 1; }

// SIGINT/SIGTERM stop the reading; what was produced is still flushed and reported. The
// handler is reset by the first signal, so a second one ends the process as usual.
class StopSignals {
 public:
  StopSignals() {
    g_interrupted = 0;
    struct sigaction action {};
    action.sa_handler = onStopSignal;
    action.sa_flags = SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* md) const { rd_kafka_metadata_destroy(md); }
};

// The partition count of `topic`; an error message when it does not exist or cannot be read.
std::variant<int32_t, std::string> partitionCount(rd_kafka_t* rk, const std::string& topic) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kMetadataTimeoutMs);
  std::string last_error;
  do {
    const rd_kafka_metadata_t* raw = nullptr;
    // The metadata of all topics: asking for one by name lets a cluster with
    // auto.create.topics.enable (and the embedded broker) create it, whatever the client says.
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &raw, kMetadataTimeoutMs);
    std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter> md(raw);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      last_error = rd_kafka_err2str(err);
    } else {
      const rd_kafka_metadata_topic_t* found = nullptr;
      for (int i = 0; i < md->topic_cnt; ++i) {
        if (topic == md->topics[i].topic) found = &md->topics[i];
      }
      if (found == nullptr || found->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        return "topic " + topic + " does not exist (or this client may not describe it)";
      }
      if (found->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
        return "topic " + topic + ": " + rd_kafka_err2str(found->err);
      }
      if (found->err == RD_KAFKA_RESP_ERR_NO_ERROR && found->partition_cnt > 0) {
        return found->partition_cnt;
      }
      // e.g. leader not available yet: ask again
      last_error = found->err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(found->err)
                                                            : "it has no partitions";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  return "cannot read the metadata of topic " + topic + ": " + last_error;
}

// Errors on a partition that waiting cannot fix.
bool permanent(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR__FATAL:
      return true;
    default:
      return false;
  }
}

Headers readHeaders(const rd_kafka_message_t* message) {
  Headers out;
  rd_kafka_headers_t* headers = nullptr;  // owned by the message
  if (rd_kafka_message_headers(message, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0;
       rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i) {
    Header h{name, std::nullopt};
    if (value != nullptr) h.value = std::string(static_cast<const char*>(value), size);
    out.push_back(std::move(h));
  }
  return out;
}

// A consumer that is closed (leaves its assignment cleanly) before it is destroyed.
struct ConsumerCloser {
  void operator()(rd_kafka_t* rk) const {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
};
using ConsumerPtr = std::unique_ptr<rd_kafka_t, ConsumerCloser>;

class Replayer {
 public:
  Replayer(const Options& options, const config::KafkaSpec& kafka, std::string bootstrap,
           std::ostream& out, std::ostream& err)
      : options_(options), kafka_(kafka), bootstrap_(std::move(bootstrap)), out_(out), err_(err) {
    report_.from = options.from;
    report_.to = options.to;
    report_.dry_run = options.dry_run;
  }

  int run() {
    if (auto error = createClients()) return fail(*error);
    auto from_partitions = partitionCount(consumer_.get(), options_.from);
    if (auto* error = std::get_if<std::string>(&from_partitions)) return fail(*error);
    // The target must exist: a producer would let the cluster auto-create it (or wait for it).
    auto to_partitions = partitionCount(consumer_.get(), options_.to);
    if (auto* error = std::get_if<std::string>(&to_partitions)) return fail(*error);
    report_.partitions = std::get<int32_t>(from_partitions);
    if (auto error = assignToEnds()) return fail(*error);
    std::optional<std::string> read_error = readAll();
    flush();
    out_ << formatReport(report_) << std::flush;
    if (read_error) return fail(*read_error);
    if (report_.failed > 0) {
      const uint64_t selected = report_.replayedTotal() + report_.failed;
      err_ << "kpipe replay: " << report_.failed << " of " << selected
           << " records could not be written to " << options_.to
           << " (first error: " << first_failure_ << "); the other " << report_.replayedTotal()
           << " were written. Running replay again writes all " << selected
           << " again (with dedup on, those already processed go to the audit topic as "
              "duplicates)\n";
      return 1;
    }
    if (g_interrupted) {
      err_ << "kpipe replay: interrupted: stopped reading " << options_.from
           << " before its end (the report says what was done)\n";
      return 1;
    }
    return 0;
  }

 private:
  struct Partition {
    int64_t end = 0;  // high watermark when the replay started
    bool done = false;
  };

  int fail(const std::string& message) {
    err_ << "kpipe replay: " << message << "\n";
    return 1;
  }

  std::optional<std::string> createClients() {
    kafka::Properties consumer_props{
        {"bootstrap.servers", bootstrap_},
        // rd_kafka_assign needs a group; it is never joined and nothing is committed.
        {"group.id", "kpipe-replay-" + std::to_string(::getpid())},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},  // records deleted while we read: go on after them
        {"enable.partition.eof", "true"},   // the end of a partition whose last offsets are gone
    };
    auto cconf =
        kafka::makeConf({&consumer_props, &kafka_.properties, &kafka_.consumer_properties});
    if (auto* error = std::get_if<std::string>(&cconf)) return *error;
    kafka::setLogger(std::get<kafka::ConfPtr>(cconf).get(), "kpipe-replay-consumer");
    auto consumer =
        kafka::makeClient(RD_KAFKA_CONSUMER, std::move(std::get<kafka::ConfPtr>(cconf)));
    if (auto* error = std::get_if<std::string>(&consumer)) return *error;
    consumer_.reset(std::get<kafka::KafkaPtr>(consumer).release());
    // Client-level errors (broker down, authentication) come out of rd_kafka_consumer_poll too.
    rd_kafka_poll_set_consumer(consumer_.get());

    if (options_.dry_run) return std::nullopt;
    kafka::Properties producer_props{
        {"bootstrap.servers", bootstrap_},
        {"enable.idempotence", "true"},  // implies acks=all and ordered retries
        {"linger.ms", "5"},
        // Java-compatible key placement, as kpipe's outputs and Java producers of the input.
        {"partitioner", "murmur2_random"},
    };
    auto pconf =
        kafka::makeConf({&producer_props, &kafka_.properties, &kafka_.producer_properties});
    if (auto* error = std::get_if<std::string>(&pconf)) return *error;
    rd_kafka_conf_t* conf = std::get<kafka::ConfPtr>(pconf).get();
    kafka::setLogger(conf, "kpipe-replay-producer");
    rd_kafka_conf_set_dr_msg_cb(conf, &Replayer::onDelivery);
    rd_kafka_conf_set_opaque(conf, this);
    auto producer =
        kafka::makeClient(RD_KAFKA_PRODUCER, std::move(std::get<kafka::ConfPtr>(pconf)));
    if (auto* error = std::get_if<std::string>(&producer)) return *error;
    producer_ = std::move(std::get<kafka::KafkaPtr>(producer));
    return std::nullopt;
  }

  // Reads the end offsets as of now and assigns every partition that has records before them.
  std::optional<std::string> assignToEnds() {
    partitions_.resize(static_cast<size_t>(report_.partitions));
    kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(report_.partitions));
    for (int32_t p = 0; p < report_.partitions; ++p) {
      int64_t low = 0, high = 0;
      rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
          consumer_.get(), options_.from.c_str(), p, &low, &high, kMetadataTimeoutMs);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return "cannot read the offsets of " + options_.from + " partition " + std::to_string(p) +
               ": " + rd_kafka_err2str(err);
      }
      partitions_[p].end = high;
      partitions_[p].done = high <= low;
      if (partitions_[p].done) continue;
      ++remaining_;
      rd_kafka_topic_partition_list_add(list.get(), options_.from.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
    if (remaining_ == 0) return std::nullopt;
    rd_kafka_resp_err_t err = rd_kafka_assign(consumer_.get(), list.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return "cannot assign " + options_.from + ": " + rd_kafka_err2str(err);
    }
    return std::nullopt;
  }

  void finish(int32_t partition) {
    Partition& p = partitions_[partition];
    if (p.done) return;
    p.done = true;
    --remaining_;
    // Stop fetching what arrived after the start: it is not replayed.
    kafka::PartitionListPtr list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), options_.from.c_str(), partition);
    rd_kafka_pause_partitions(consumer_.get(), list.get());
  }

  // Until every partition reached its end, a permanent error, a stall or a stop signal.
  std::optional<std::string> readAll() {
    auto last_progress = std::chrono::steady_clock::now();
    std::string last_error;
    while (remaining_ > 0 && !g_interrupted) {
      if (producer_) rd_kafka_poll(producer_.get(), 0);  // delivery reports
      kafka::MessagePtr message(rd_kafka_consumer_poll(consumer_.get(), 100));
      const auto now = std::chrono::steady_clock::now();
      if (!message) {
        if (now - last_progress > kStallTimeout) {
          return "no progress reading " + options_.from + " for " +
                 std::to_string(kStallTimeout.count()) + " s" +
                 (last_error.empty() ? "" : " (last error: " + last_error + ")");
        }
        continue;
      }
      const int32_t p = message->partition;
      const bool ours = message->rkt != nullptr &&
                        options_.from == rd_kafka_topic_name(message->rkt) && p >= 0 &&
                        p < report_.partitions;
      if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        // The offset is where the partition ends now: at or past the start's end, we are done.
        if (ours && message->offset >= partitions_[p].end) finish(p);
        last_progress = now;
        continue;
      }
      if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        last_error = rd_kafka_message_errstr(message.get());
        if (permanent(message->err)) return "reading " + options_.from + ": " + last_error;
        continue;
      }
      if (!ours || partitions_[p].done) continue;
      last_progress = now;
      if (message->offset >= partitions_[p].end) {
        finish(p);
        continue;
      }
      handle(message.get());
      if (message->offset + 1 >= partitions_[p].end) finish(p);
    }
    return std::nullopt;
  }

  void handle(const rd_kafka_message_t* message) {
    ++report_.read;
    Headers headers = readHeaders(message);
    ErrorRecordHeaders error = readErrorHeaders(headers);
    if (auto skip = decide(error, options_.filter)) {
      ++report_.skipped[*skip];
      return;
    }
    if (error.origin_topic && *error.origin_topic != options_.to) ++report_.other_origin;
    const std::string origin = options_.from + ":" + std::to_string(message->partition) + ":" +
                               std::to_string(message->offset);
    if (options_.dry_run) {
      ++report_.replayed[*error.stage];
      out_ << "would replay " << origin << " "
           << (message->key == nullptr
                   ? std::string("no key")
                   : "key \"" +
                         printable({static_cast<const char*>(message->key), message->key_len}, 80) +
                         "\"")
           << " (" << printable(*error.stage, 40) << ": " << printable(*error.reason, 160) << ")\n";
      return;
    }
    produce(message, replayHeaders(headers, origin), &report_.replayed[*error.stage]);
  }

  // Writes one record; `delivered` is counted up by its delivery report (std::map nodes stay
  // where they are, so the pointer is stable).
  void produce(const rd_kafka_message_t* message, const Headers& headers, uint64_t* delivered) {
    kafka::HeadersPtr list(rd_kafka_headers_new(headers.size()));
    for (const auto& h : headers) {
      rd_kafka_header_add(list.get(), h.name.data(), static_cast<ssize_t>(h.name.size()),
                          h.value ? h.value->data() : nullptr,
                          h.value ? static_cast<ssize_t>(h.value->size()) : 0);
    }
    while (true) {
      // Key and value unchanged, null stays null (a tombstone is replayed as one). The
      // timestamp is new: an old one could put the record past the topic's retention at once.
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_.get(), RD_KAFKA_V_TOPIC(options_.to.c_str()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(message->key, message->key_len),
          RD_KAFKA_V_VALUE(message->payload, message->len), RD_KAFKA_V_HEADERS(list.get()),
          RD_KAFKA_V_OPAQUE(delivered), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        list.release();  // taken by the producer on success
        return;
      }
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        failed(err);
        return;
      }
      rd_kafka_poll(producer_.get(), 100);  // serves delivery reports, which make room
    }
  }

  static void onDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
    auto* self = static_cast<Replayer*>(opaque);
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++*static_cast<uint64_t*>(message->_private);
    } else {
      self->failed(message->err);
    }
  }

  void failed(rd_kafka_resp_err_t err) {
    if (report_.failed++ == 0) first_failure_ = rd_kafka_err2str(err);
  }

  // Waits for every delivery report; message.timeout.ms bounds how long a record is tried.
  void flush() {
    if (!producer_) return;
    while (rd_kafka_outq_len(producer_.get()) > 0) rd_kafka_flush(producer_.get(), 1000);
    rd_kafka_poll(producer_.get(), 0);
  }

  const Options& options_;
  const config::KafkaSpec& kafka_;
  std::string bootstrap_;
  std::ostream& out_;
  std::ostream& err_;
  Report report_;
  std::string first_failure_;
  std::vector<Partition> partitions_;
  size_t remaining_ = 0;  // partitions not yet read to their end
  // Last: destroyed first, while the report their callbacks write to still exists.
  kafka::KafkaPtr producer_;
  ConsumerPtr consumer_;
};

}  // namespace

int run(const Options& options, std::ostream& out, std::ostream& err) {
  auto loaded = config::loadConfig(options.config);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) err << e.str() << "\n";
    err << "kpipe replay: " << plural(loaded.errors.size(), "config error") << "\n";
    return 1;
  }
  const config::Config& config = *loaded.config;
  std::string bootstrap = options.bootstrap.empty() ? config.kafka.bootstrap : options.bootstrap;
  if (bootstrap == "embedded") {
    err << "kpipe replay: kafka.bootstrap in " << options.config.string()
        << " is \"embedded\": that broker lives inside a `kpipe run` process and replay cannot "
           "reach it. Pass --bootstrap HOST:PORT of a running cluster (e.g. the address "
           "`kpipe broker` prints)\n";
    return 2;
  }
  // librdkafka's own log lines (stderr): only warnings and errors, as text, next to the report.
  log::configure({config::LogFormat::Text, std::max(config.log.level, config::LogLevel::Warn)});
  StopSignals signals;
  Replayer replayer(options, config.kafka, bootstrap, out, err);
  return replayer.run();
}

}  // namespace kpipe::replay
