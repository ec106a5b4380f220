#pragma once
// The pure half of a config reload: load and validate a new config completely, then say what
// must change. The supervisor (supervisor.h) applies the plan; `kpipe check` shares validate().
//
// A reload is all or nothing up to the plan: any error anywhere (a YAML typo, a schema that does
// not compile, a librdkafka property it refuses, a schema change that rejects old data) keeps the
// running config as it is. Only after that are pipelines stopped and started.
//
// Thread-safe; reads files, so it runs off the io_context thread.

#include "daemon/app/schema_evolution.h"
#include "daemon/config/loader.h"
#include "daemon/config/spec.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kpipe::app {

// A config that passed prepare(), with the schema files as it read them: a later reload compares
// against these, since an edit overwrites the files on disk.
struct LoadedConfig {
  config::Config config;
  SchemaFiles schema_files;
};

// Every error `run` would meet starting `config`, beyond the loader's: schemas that do not
// compile, librdkafka properties it refuses, HTTP outputs that cannot be built. One line each,
// prefixed with the file (and line) they come from.
std::vector<std::string> validate(const config::Config& config);

struct Candidate {
  std::optional<LoadedConfig> loaded;  // set only when errors is empty
  std::vector<std::string> errors;
};

// Loads `file` and checks it as a replacement for `running` (null at start-up): the loader's
// errors, validate(), a snapshot of the schema files, growth-only schema evolution against the
// running config's snapshot, and the changes a running daemon cannot make (to or from the
// embedded broker).
Candidate prepare(const std::filesystem::path& file, const LoadedConfig* running,
                  const config::EnvLookup& env = config::processEnvironment());

struct ReloadPlan {
  // Pipeline names. Changed: its file, its schemas, its dedup store or the kafka section
  // differ; it drains and restarts. Unchanged ones keep running untouched.
  std::vector<std::string> added, changed, removed, unchanged;
  // Settings that changed but apply only at the next start ("http.listen", ...).
  std::vector<std::string> need_restart;
  bool log_changed = false;
  bool nothing() const {
    return added.empty() && changed.empty() && removed.empty() && !log_changed;
  }
};

ReloadPlan plan(const LoadedConfig& running, const LoadedConfig& next);

// The fingerprint of the dedup store `p` names in `config`; "" without one (or with the private
// memory store).
const std::string& storeFingerprint(const config::Config& config, const config::PipelineSpec& p);

}  // namespace kpipe::app
