#include "daemon/plan/plan.h"

#include "daemon/config/loader.h"
#include "daemon/plan/measure.h"
#include "daemon/schema/rapidjson.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ostream>

namespace kpipe::plan {
namespace {

// "50000", "50k", "1.5M".
std::optional<double> parseCount(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double scale = 1;
  if (text.back() == 'k' || text.back() == 'K') {
    scale = 1e3;
    text.remove_suffix(1);
  } else if (text.back() == 'M') {
    scale = 1e6;
    text.remove_suffix(1);
  }
  try {
    size_t used = 0;
    const std::string number(text);
    const double value = std::stod(number, &used);
    if (used != number.size() || !std::isfinite(value)) return std::nullopt;
    return value * scale;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string bytes(double value) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  char out[32];
  std::snprintf(out, sizeof out, unit == 0 ? "%.0f %s" : "%.1f %s", value, kUnits[unit]);
  return out;
}

std::string number(double value) {
  char out[32];
  std::snprintf(out, sizeof out, value == std::floor(value) ? "%.0f" : "%.1f", value);
  return out;
}

std::string duration(double seconds) {
  char out[32];
  if (seconds < 0.01) {
    std::snprintf(out, sizeof out, "%.2g ms", seconds * 1000);
  } else if (seconds < 1) {
    std::snprintf(out, sizeof out, "%.0f ms", seconds * 1000);
  } else if (seconds < 120) {
    std::snprintf(out, sizeof out, "%.1f s", seconds);
  } else if (seconds < 7200) {
    std::snprintf(out, sizeof out, "%.0f min", seconds / 60);
  } else if (seconds < 3 * 86400) {
    std::snprintf(out, sizeof out, "%.1f h", seconds / 3600);
  } else {
    std::snprintf(out, sizeof out, "%.1f d", seconds / 86400);
  }
  return out;
}

// W and its quantiles: finer than duration() below 10 ms, where pipelines usually are.
std::string latency(double seconds) {
  char out[32];
  if (seconds < 0.01) {
    std::snprintf(out, sizeof out, "%.2f ms", seconds * 1000);
  } else if (seconds < 1) {
    std::snprintf(out, sizeof out, "%.1f ms", seconds * 1000);
  } else {
    std::snprintf(out, sizeof out, "%.2f s", seconds);
  }
  return out;
}

// Whole messages, down: the plan is sized with the same figure.
std::string rate(double per_second) {
  char out[32];
  std::snprintf(out, sizeof out, "%.0f", std::floor(per_second));
  return out;
}

std::string measurementText(const Measurement& m) {
  std::string out;
  out += "measured:    pipeline " + m.pipeline + " of " + m.config_file +
         ", one input partition on an embedded broker in this process\n";
  out += "samples:     " + std::to_string(m.samples) + " message" + (m.samples == 1 ? "" : "s") +
         ", " + bytes(m.sample_bytes) + " on average, from " + m.sample_source + "\n";
  if (!m.ids.empty()) out += "ids:         " + m.ids + "\n";
  if (!m.keys.empty()) out += "keys:        " + m.keys + "\n";
  if (!m.store.empty()) out += "store:       " + m.store + "\n";
  out += "output:      " + m.output + "\n";
  out += "throughput:  " + rate(m.per_partition) +
         " msg/s per partition: " + std::to_string(m.messages) + " messages in " +
         number(std::round(m.seconds * 10) / 10) + " s (ok " + std::to_string(m.ok) + ", invalid " +
         std::to_string(m.invalid) + ", duplicate " + std::to_string(m.duplicate) + ", error " +
         std::to_string(m.error) + ")\n";
  if (m.latency_mean) {
    out += "latency:     W = " + latency(*m.latency_mean) + " mean read → acknowledged";
    if (m.latency_p50 && m.latency_p99) {
      out += " (p50 ≈ " + latency(*m.latency_p50) + ", p99 ≈ " + latency(*m.latency_p99) + ")";
    }
    out += ", " + std::to_string(m.latency_messages) + " messages at " + rate(m.latency_load) +
           " msg/s (the throughput ÷ headroom)\n";
  } else {
    out += "latency:     not measured (see the warnings)\n";
  }
  for (const auto& note : m.notes) out += "note:        " + note + "\n";
  for (const auto& warning : m.warnings) out += "warning:     " + warning + "\n";
  return out;
}

template <typename Writer>
void measurementJson(const Measurement& m, Writer& w) {
  auto optional = [&](const char* key, const std::optional<double>& value) {
    w.Key(key);
    value ? w.Double(*value) : w.Null();
  };
  auto strings = [&](const char* key, const std::vector<std::string>& items) {
    w.Key(key);
    w.StartArray();
    for (const auto& item : items) w.String(item.c_str());
    w.EndArray();
  };
  w.StartObject();
  w.Key("pipeline");
  w.String(m.pipeline.c_str());
  w.Key("config");
  w.String(m.config_file.c_str());
  w.Key("sample_source");
  w.String(m.sample_source.c_str());
  w.Key("samples");
  w.Uint64(m.samples);
  w.Key("sample_bytes");
  w.Double(m.sample_bytes);
  w.Key("ids");
  w.String(m.ids.c_str());
  w.Key("keys");
  w.String(m.keys.c_str());
  w.Key("store");
  m.store.empty() ? w.Null() : w.String(m.store.c_str());
  w.Key("output");
  w.String(m.output.c_str());
  w.Key("seconds");
  w.Double(m.seconds);
  w.Key("messages");
  w.Uint64(m.messages);
  w.Key("outcomes");
  w.StartObject();
  w.Key("ok");
  w.Uint64(m.ok);
  w.Key("invalid");
  w.Uint64(m.invalid);
  w.Key("duplicate");
  w.Uint64(m.duplicate);
  w.Key("error");
  w.Uint64(m.error);
  w.EndObject();
  w.Key("per_partition");
  w.Double(m.per_partition);
  w.Key("latency_load");
  w.Double(m.latency_load);
  w.Key("latency_messages");
  w.Uint64(m.latency_messages);
  optional("latency_mean_seconds", m.latency_mean);
  optional("latency_p50_seconds", m.latency_p50);
  optional("latency_p99_seconds", m.latency_p99);
  strings("notes", m.notes);
  strings("warnings", m.warnings);
  w.EndObject();
}

}  // namespace

std::variant<Plan, std::string> compute(const Inputs& in) {
  if (!(in.throughput > 0)) return std::string("--throughput: a positive number of messages/s");
  if (!(in.message_bytes > 0)) return std::string("--message-size: a positive size");
  if (!(in.per_partition > 0)) {
    return std::string(
        "--per-partition: a positive number of messages/s (or measure it with --measure "
        "PIPELINE)");
  }
  if (in.brokers < 1) return std::string("--brokers: at least 1");
  if (in.replication_factor < 1 || in.replication_factor > in.brokers) {
    return std::string("--replication-factor: between 1 and the broker count");
  }
  if (!(in.headroom >= 1)) return std::string("--headroom: at least 1 (1.5 = 50% spare capacity)");
  if (!(in.retention_seconds > 0)) return std::string("--retention: a positive duration");
  if (in.latency_seconds && !(*in.latency_seconds > 0)) {
    return std::string("--latency: a positive duration");
  }

  Plan plan;
  plan.partitions_needed = std::max(
      1, static_cast<int>(std::ceil(in.throughput * in.headroom / in.per_partition - 1e-9)));
  plan.partitions = (plan.partitions_needed + in.brokers - 1) / in.brokers * in.brokers;
  plan.consumers = plan.partitions;
  if (in.latency_seconds) {
    plan.inflight = in.throughput * *in.latency_seconds;
    plan.inflight_per_partition =
        std::max(1, static_cast<int>(std::ceil(*plan.inflight / plan.partitions)));
  }
  plan.ingress_bytes_per_second = in.throughput * in.message_bytes;
  plan.disk_bytes = plan.ingress_bytes_per_second * in.retention_seconds * in.replication_factor;
  plan.disk_bytes_per_broker = plan.disk_bytes / in.brokers;
  // Capacity beyond the target works off a backlog: an hour of it takes this long.
  const double spare = plan.partitions * in.per_partition - in.throughput;
  plan.catch_up_seconds_per_hour = spare > 0 ? 3600 * in.throughput / spare : INFINITY;

  const int ceiling = 100 * in.brokers * in.replication_factor;
  if (plan.partitions > ceiling) {
    plan.warnings.push_back(
        std::to_string(plan.partitions) +
        " partitions is over ~100 × brokers × replication "
        "factor (" +
        std::to_string(ceiling) +
        "): more than the cluster should carry (leader "
        "elections, open files, end-to-end latency); add brokers, or raise the per-partition "
        "throughput (batching, more concurrency) and measure again");
  }
  if (in.current_partitions && plan.partitions > *in.current_partitions) {
    if (in.keyed) {
      plan.warnings.push_back(
          "the topic has " + std::to_string(*in.current_partitions) + " partitions: adding " +
          "partitions to a keyed topic sends each key's new messages to another partition than "
          "its old ones, so consumers may process them out of order. Create a new topic with " +
          std::to_string(plan.partitions) +
          " partitions and move producers over once consumers have drained the old one");
    } else {
      plan.warnings.push_back("the topic has " + std::to_string(*in.current_partitions) +
                              " partitions: raise it to " + std::to_string(plan.partitions) +
                              " (unkeyed: no order to break)");
    }
  }
  return plan;
}

std::string text(const Inputs& in, const Plan& plan, const Measurement* m) {
  std::string out;
  if (m != nullptr) out += measurementText(*m) + "\n";
  out += "target:      " + number(in.throughput) + " msg/s × " + bytes(in.message_bytes) + " = " +
         bytes(plan.ingress_bytes_per_second) + "/s, headroom ×" + number(in.headroom) + "\n";
  out += "partitions:  " + std::to_string(plan.partitions);
  if (plan.partitions != plan.partitions_needed) {
    out += " (" + std::to_string(plan.partitions_needed) + " needed at " +
           number(in.per_partition) + " msg/s each, rounded up to a multiple of " +
           std::to_string(in.brokers) + " brokers)";
  } else {
    out += " (at " + number(in.per_partition) + " msg/s each)";
  }
  out += "\nconsumers:   up to " + std::to_string(plan.consumers) +
         " (one partition has one consumer at a time; more members stay idle)\n";
  if (plan.inflight) {
    out += "in flight:   " + number(std::ceil(*plan.inflight)) +
           " messages (L = λ·W = " + number(in.throughput) + " × " + duration(*in.latency_seconds) +
           "), " + std::to_string(*plan.inflight_per_partition) +
           " per partition: the pipeline's concurrency (ordering: key) and max_pending must "
           "allow that many\n";
  } else {
    out += "in flight:   give --latency (read → acknowledged) for Little's law\n";
  }
  out += "disk:        " + bytes(plan.disk_bytes) + " for " + duration(in.retention_seconds) +
         " of retention × " + std::to_string(in.replication_factor) + " replicas, " +
         bytes(plan.disk_bytes_per_broker) + " per broker (before compression)\n";
  out += "catch-up:    an hour of backlog takes " + duration(plan.catch_up_seconds_per_hour) +
         " at full capacity\n";
  for (const auto& warning : plan.warnings) out += "warning:     " + warning + "\n";
  return out;
}

std::string json(const Inputs& in, const Plan& plan, const Measurement* m) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  if (m != nullptr) {
    w.Key("measurement");
    measurementJson(*m, w);
  }
  w.Key("inputs");
  w.StartObject();
  w.Key("throughput");
  w.Double(in.throughput);
  w.Key("message_bytes");
  w.Double(in.message_bytes);
  w.Key("per_partition");
  w.Double(in.per_partition);
  w.Key("latency_seconds");
  in.latency_seconds ? w.Double(*in.latency_seconds) : w.Null();
  w.Key("brokers");
  w.Int(in.brokers);
  w.Key("replication_factor");
  w.Int(in.replication_factor);
  w.Key("retention_seconds");
  w.Double(in.retention_seconds);
  w.Key("headroom");
  w.Double(in.headroom);
  w.Key("current_partitions");
  in.current_partitions ? w.Int(*in.current_partitions) : w.Null();
  w.Key("keyed");
  w.Bool(in.keyed);
  w.EndObject();
  w.Key("partitions");
  w.Int(plan.partitions);
  w.Key("partitions_needed");
  w.Int(plan.partitions_needed);
  w.Key("consumers");
  w.Int(plan.consumers);
  w.Key("inflight");
  plan.inflight ? w.Double(*plan.inflight) : w.Null();
  w.Key("inflight_per_partition");
  plan.inflight_per_partition ? w.Int(*plan.inflight_per_partition) : w.Null();
  w.Key("ingress_bytes_per_second");
  w.Double(plan.ingress_bytes_per_second);
  w.Key("disk_bytes");
  w.Double(plan.disk_bytes);
  w.Key("disk_bytes_per_broker");
  w.Double(plan.disk_bytes_per_broker);
  w.Key("catch_up_seconds_per_hour");
  std::isfinite(plan.catch_up_seconds_per_hour) ? w.Double(plan.catch_up_seconds_per_hour)
                                                : w.Null();
  w.Key("warnings");
  w.StartArray();
  for (const auto& warning : plan.warnings) w.String(warning.c_str());
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::variant<Args, ArgsError> parseArgs(const std::vector<std::string_view>& args) {
  Args parsed;
  Inputs& in = parsed.inputs;
  MeasureOptions measure;
  bool have_throughput = false, have_per_partition = false;
  std::vector<std::string_view> measure_flags;  // given: they need --measure
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    if (flag == "--json") {
      parsed.json = true;
      continue;
    }
    if (flag == "--unkeyed") {
      in.keyed = false;
      continue;
    }
    if (flag == "--use-store" || flag == "--allow-http") {
      (flag == "--use-store" ? measure.use_store : measure.allow_http) = true;
      measure_flags.push_back(flag);
      continue;
    }
    if (!flag.starts_with("--")) return ArgsError{"unexpected argument " + std::string(flag), true};
    if (i + 1 >= args.size()) return ArgsError{std::string(flag) + " needs a value"};
    const std::string_view value = args[++i];
    auto bad = [&](const char* what) {
      return ArgsError{std::string(flag) + " " + std::string(value) + ": expected " + what};
    };
    auto count = parseCount(value);
    auto whole = [&](int& target) {
      if (!count || *count < 1 || *count != std::floor(*count) || *count > 1e6) return false;
      target = static_cast<int>(*count);
      return true;
    };
    if (flag == "--throughput") {
      if (!count) return bad("messages per second (50000, 50k, 1.5M)");
      in.throughput = *count;
      have_throughput = true;
    } else if (flag == "--per-partition") {
      if (!count) return bad("messages per second (5000, 5k)");
      in.per_partition = *count;
      have_per_partition = true;
    } else if (flag == "--message-size") {
      auto size = config::parseSize(value);
      if (!size) return bad("a size (512, 1KiB, 2MiB)");
      in.message_bytes = static_cast<double>(*size);
      parsed.message_size_given = true;
    } else if (flag == "--latency") {
      auto d = config::parseDuration(value);
      if (!d) return bad("a duration (20ms, 1s)");
      in.latency_seconds = std::chrono::duration<double>(*d).count();
      parsed.latency_given = true;
    } else if (flag == "--retention") {
      auto d = config::parseDuration(value);
      if (!d) return bad("a duration (7d, 24h)");
      in.retention_seconds = std::chrono::duration<double>(*d).count();
    } else if (flag == "--headroom") {
      if (!count) return bad("a factor (1.5)");
      in.headroom = *count;
    } else if (flag == "--brokers") {
      if (!whole(in.brokers)) return bad("a whole number ≥ 1");
    } else if (flag == "--replication-factor") {
      if (!whole(in.replication_factor)) return bad("a whole number ≥ 1");
    } else if (flag == "--current-partitions") {
      int partitions = 0;
      if (!whole(partitions)) return bad("a whole number ≥ 1");
      in.current_partitions = partitions;
    } else if (flag == "--measure") {
      if (value.empty() || value.starts_with("-")) return bad("a pipeline name");
      measure.pipeline = std::string(value);
    } else if (flag == "--config") {
      measure.config = std::string(value);
      measure_flags.push_back(flag);
    } else if (flag == "--sample") {
      measure.sample = std::string(value);
      measure_flags.push_back(flag);
    } else if (flag == "--seconds") {
      // A number of seconds, or a duration as --latency takes it (500ms, 5s, 1m).
      std::optional<double> seconds = count;
      if (auto d = config::parseDuration(value))
        seconds = std::chrono::duration<double>(*d).count();
      if (!seconds || *seconds < 0.5 || *seconds > 600) {
        return bad("seconds or a duration (5, 5s, 500ms), 0.5 s to 10 min");
      }
      measure.seconds = *seconds;
      measure_flags.push_back(flag);
    } else if (flag == "--keys") {
      if (value == "sample") {
        measure.keys = 0;
      } else if (!count || *count < 1 || *count != std::floor(*count) || *count > 1e9) {
        return bad("a number of distinct keys (10000, 1M), or \"sample\"");
      } else {
        measure.keys = static_cast<uint64_t>(*count);
      }
      measure_flags.push_back(flag);
    } else {
      return ArgsError{"unknown argument " + std::string(flag), true};
    }
  }
  if (!measure.pipeline.empty()) {
    if (have_per_partition) {
      return ArgsError{"--per-partition and --measure: give one (--measure measures it)"};
    }
    parsed.measure = std::move(measure);
  } else if (!measure_flags.empty()) {
    return ArgsError{std::string(measure_flags.front()) + " goes with --measure PIPELINE", true};
  }
  if (!have_throughput ||
      (!parsed.measure && (!parsed.message_size_given || !have_per_partition))) {
    return ArgsError{"", true};
  }
  return parsed;
}

int planCommand(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err) {
  auto parsed = parseArgs(args);
  if (auto* error = std::get_if<ArgsError>(&parsed)) {
    if (!error->message.empty()) err << "kpipe plan: " << error->message << "\n";
    if (error->usage) err << kUsage;
    return 2;
  }
  Args& a = std::get<Args>(parsed);
  Inputs& in = a.inputs;
  std::optional<Measurement> measured;
  if (a.measure) {
    // The measurement sizes nothing by itself: refuse what compute() would refuse before
    // spending seconds on it (the measured figures are positive).
    Inputs check = in;
    check.per_partition = 1;
    if (!a.message_size_given) check.message_bytes = 1;
    if (auto computed = compute(check); auto* error = std::get_if<std::string>(&computed)) {
      err << "kpipe plan: " << *error << "\n";
      return 2;
    }
    auto result = measure(*a.measure, in.headroom, err);
    if (auto* error = std::get_if<std::string>(&result)) {
      err << "kpipe plan --measure: " << *error << "\n";
      return *error == kInterrupted ? 130 : 1;
    }
    measured = std::move(std::get<Measurement>(result));
    // Whole messages: the measured rate is no more precise than that.
    in.per_partition = std::max(1.0, std::floor(measured->per_partition));
    if (a.latency_given) {
      measured->notes.push_back("Little's law uses --latency " + duration(*in.latency_seconds) +
                                ", not the measured W");
    }
    if (!a.message_size_given) {
      measured->notes.push_back(
          "message size: the samples' average (key + value + headers); --message-size gives "
          "another");
    }
    if (!a.latency_given && measured->latency_mean) in.latency_seconds = *measured->latency_mean;
    if (!a.message_size_given) in.message_bytes = measured->sample_bytes;
  }
  auto computed = compute(in);
  if (auto* error = std::get_if<std::string>(&computed)) {
    err << "kpipe plan: " << *error << "\n";
    return measured ? 1 : 2;
  }
  const Plan& plan = std::get<Plan>(computed);
  const Measurement* m = measured ? &*measured : nullptr;
  out << (a.json ? json(in, plan, m) : text(in, plan, m));
  return 0;
}

}  // namespace kpipe::plan
