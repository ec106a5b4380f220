#include "daemon/observe/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace kpipe::observe::log {
namespace {

std::atomic<config::LogLevel> g_level{config::LogLevel::Info};
std::atomic<config::LogFormat> g_format{config::LogFormat::Text};
std::mutex g_write_mutex;

const char* levelName(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::Debug:
      return "debug";
    case config::LogLevel::Info:
      return "info";
    case config::LogLevel::Warn:
      return "warn";
    case config::LogLevel::Error:
      return "error";
  }
  return "info";
}

void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// Text values are quoted only when they would be ambiguous (logfmt convention).
void appendTextValue(std::string& out, std::string_view s) {
  bool plain = !s.empty();
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '=' || c >= 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) {
    out += s;
  } else {
    appendJsonString(out, s);
  }
}

std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  return buf;
}

void appendValue(std::string& out, const Field& field, bool json) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          json ? appendJsonString(out, v) : appendTextValue(out, v);
        } else if constexpr (std::is_same_v<T, bool>) {
          out += v ? "true" : "false";
        } else {
          out += std::to_string(v);
        }
      },
      field.value);
}

}  // namespace

void configure(const config::LogSpec& spec) {
  g_level = spec.level;
  g_format = spec.format;
}

bool enabled(config::LogLevel level) { return level >= g_level.load(std::memory_order_relaxed); }

void write(config::LogLevel level, std::string_view message, Fields fields) {
  if (!enabled(level)) return;
  std::string line;
  line.reserve(128);
  if (g_format == config::LogFormat::Json) {
    line += "{\"ts\":\"" + timestamp() + "\",\"level\":\"" + levelName(level) + "\",\"msg\":";
    appendJsonString(line, message);
    for (const auto& f : fields) {
      line += ',';
      appendJsonString(line, f.key);
      line += ':';
      appendValue(line, f, true);
    }
    line += "}\n";
  } else {
    line += timestamp() + " " + levelName(level) + " ";
    line += message;
    for (const auto& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      appendValue(line, f, false);
    }
    line += '\n';
  }
  std::lock_guard lock(g_write_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace kpipe::observe::log
