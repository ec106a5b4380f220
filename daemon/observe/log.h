#pragma once
// Structured logging to stderr: one line per event, JSON lines or logfmt-like text.
//
// Thread-safe (librdkafka logs from its own threads). Fields are key/value pairs so that
// pipeline/topic/partition/offset can be filtered on.
//
//   log::info("partition assigned", {{"pipeline", name}, {"partition", 3}});

#include "daemon/config/spec.h"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace kpipe::observe::log {

struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(std::string(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string(v)) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, int64_t v) : key(k), value(v) {}
  Field(std::string_view k, int v) : key(k), value(int64_t{v}) {}
  Field(std::string_view k, uint64_t v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  std::string_view key;
  std::variant<std::string, int64_t, double, bool> value;
};
using Fields = std::initializer_list<Field>;

void configure(const config::LogSpec& spec);
bool enabled(config::LogLevel level);
void write(config::LogLevel level, std::string_view message, Fields fields = {});

inline void debug(std::string_view m, Fields f = {}) { write(config::LogLevel::Debug, m, f); }
inline void info(std::string_view m, Fields f = {}) { write(config::LogLevel::Info, m, f); }
inline void warn(std::string_view m, Fields f = {}) { write(config::LogLevel::Warn, m, f); }
inline void error(std::string_view m, Fields f = {}) { write(config::LogLevel::Error, m, f); }

}  // namespace kpipe::observe::log
