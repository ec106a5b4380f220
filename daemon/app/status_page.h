#pragma once
// /status (JSON, for tools) and / (HTML, for people) from the pipelines' status snapshots.
// The same facts as the metrics, arranged per pipeline and partition, with the last error.

#include "daemon/pipeline/worker.h"

#include <string>
#include <vector>

namespace kpipe::app {

std::string statusJson(const std::vector<pipeline::PipelineStatus>& pipelines);
// A page that refreshes itself every 5 s; every text from the config or the data is escaped.
std::string statusHtml(const std::vector<pipeline::PipelineStatus>& pipelines,
                       const std::string& version);

}  // namespace kpipe::app
