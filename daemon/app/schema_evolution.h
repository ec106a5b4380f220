#pragma once
// `kpipe check --against`: growth-only evolution of each pipeline's schemas (schema/compat.h).
//
// Pure function of the two loaded configs and the schema files they name; thread-safe.

#include "daemon/config/spec.h"

#include <string>
#include <vector>

namespace kpipe::app {

// Compares the schemas of each pipeline in `current` with those of the pipeline of the same name
// in `previous`, per event type when either uses per-type schemas, and returns one line per
// change that rejects data the previous config accepted:
//   "PIPELINE_FILE: pipeline NAME, schema FILE: at /pointer: message"
// Pipelines with `schema_evolution: any`, and pipelines new in `current`, are not compared.
std::vector<std::string> checkSchemaEvolution(const config::Config& previous,
                                              const config::Config& current);

}  // namespace kpipe::app
