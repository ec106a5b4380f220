#pragma once
// Loads kpipe.yaml and every pipeline file it points at into typed specs (config/spec.h).
//
// Every problem is reported, not only the first: unknown keys (with a "did you mean"), wrong
// types, missing required fields, bad values, duplicate keys, undefined ${VARS}, duplicate
// pipeline names. Each error names file:line:column and the key path. A config with any error
// yields no Config at all, so a daemon is never started from half a config.
//
// Pure function of the files and the environment; thread-compatible.

#include "daemon/config/spec.h"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kpipe::config {

struct ConfigError {
  SourceLocation where;
  // "input.topic", "stores.ids.ttl"; where.file says which pipeline. "" for file-level errors.
  std::string key_path;
  std::string message;
  // "file:line:column: key.path: message"
  std::string str() const;
};

// Looks up an environment variable; nullopt when unset. Tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
EnvLookup processEnvironment();

struct LoadResult {
  std::optional<Config> config;     // set only when errors is empty
  std::vector<ConfigError> errors;  // in file order
  bool ok() const { return config.has_value(); }
};

// Loads `file` (kpipe.yaml) and the pipeline files in its `pipelines` directory (*.yaml, *.yml,
// sorted by name; files ending in .test.yaml / .test.yml or starting with "." are skipped).
// Relative paths in the config resolve against the directory of `file`.
LoadResult loadConfig(const std::filesystem::path& file,
                      const EnvLookup& env = processEnvironment());

// Replaces ${VAR} and ${VAR:-default} in `text`. `$$` is a literal `$`; any other `$` stays as
// written. As in the shell, the default also applies when VAR is set but empty. Returns the error
// message for an unset variable without default, an unterminated reference, or a value with a
// newline.
struct InterpolationResult {
  std::string value;
  std::optional<std::string> error;
};
InterpolationResult interpolate(std::string_view text, const EnvLookup& env);

// "250ms", "30s", "5m", "2h", "7d" (an integer and a unit). nullopt when malformed.
std::optional<Duration> parseDuration(std::string_view text);
// "1024", "64KiB", "1MiB", "1GiB" (also KB/MB/GB as powers of ten). nullopt when malformed.
std::optional<uint64_t> parseSize(std::string_view text);

}  // namespace kpipe::config
