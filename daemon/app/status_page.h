#pragma once
// /status (JSON, for tools) and / (HTML, for people) from the pipelines' status snapshots.
// The same facts as the metrics, arranged per pipeline and partition, with the last error.

#include "daemon/pipeline/worker.h"

#include <string>
#include <vector>

namespace kpipe::app {

// The config the daemon runs and what became of its reloads.
struct ConfigStatus {
  std::string file;
  int64_t loaded_at_ms = 0;  // wall clock, when the running config was applied
  uint64_t reloads_succeeded = 0, reloads_failed = 0;
  std::string last_result;  // "", "success" or "failure"
  int64_t last_at_ms = 0;
  double last_seconds = 0;                // first change seen → applied (success only)
  std::vector<std::string> last_errors;   // of the last failure, "file:line:col: ..." each
  std::vector<std::string> need_restart;  // changed settings that apply at the next start
};

std::string statusJson(const std::vector<pipeline::PipelineStatus>& pipelines,
                       const ConfigStatus& config = {});
// A page that refreshes itself every 5 s; every text from the config or the data is escaped.
std::string statusHtml(const std::vector<pipeline::PipelineStatus>& pipelines,
                       const std::string& version, const ConfigStatus& config = {});

}  // namespace kpipe::app
