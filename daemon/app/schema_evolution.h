#pragma once
// Growth-only evolution of each pipeline's schemas (schema/compat.h), for `kpipe check
// --against` and for a reload, which compares against a snapshot of the running config's files.
//
// Pure function of the two loaded configs and the schema files they name; thread-safe.

#include "daemon/config/spec.h"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kpipe::app {

// The bytes of schema files as one config saw them, by path. A reload compares the running
// config's snapshot with the files on disk now: by then an edit has overwritten the old files.
using SchemaFiles = std::map<std::filesystem::path, std::string>;

// Reads every schema-like file (*.json, *.yaml, *.yml) under the directory of each schema file
// that `config`'s pipelines name: the files those schemas may `$ref`. At most 10,000 files and
// 64 MiB in all; beyond that, or when a file cannot be read, returns the reason instead.
std::variant<SchemaFiles, std::string> readSchemaFiles(const config::Config& config);

// The part of `files` that `pipeline`'s schemas read: its schema files, and every file under
// the directory of one that `$ref`s other documents. Equal parts mean equal schemas.
SchemaFiles schemaFilesOf(const config::PipelineSpec& pipeline, const SchemaFiles& files);

// Compares the schemas of each pipeline in `current` with those of the pipeline of the same name
// in `previous`, per event type when either uses per-type schemas, and returns one line per
// change that rejects data the previous config accepted:
//   "PIPELINE_FILE: pipeline NAME, schema FILE: at /pointer: message"
// Pipelines with `schema_evolution: any`, and pipelines new in `current`, are not compared.
// Schema files are read from disk, or from the snapshots given.
std::vector<std::string> checkSchemaEvolution(const config::Config& previous,
                                              const config::Config& current,
                                              const SchemaFiles* previous_files = nullptr,
                                              const SchemaFiles* current_files = nullptr);

}  // namespace kpipe::app
