#pragma once
// Internal to daemon/schema: reading a schema document, written in JSON or in YAML.
//
// YAML (a .yaml or .yml file) is read with yaml-cpp and converted to the same RapidJSON document
// JSON would give, with YAML 1.2 core-schema typing of plain scalars (null, true/false, integers,
// floats; anything else is a string, and quoted scalars are always strings).

#include "daemon/schema/rapidjson.h"

#include <filesystem>
#include <memory>
#include <string_view>

namespace kpipe::schema::detail {

enum class SchemaSyntax { kJson, kYaml };

// kYaml for .yaml and .yml files, else kJson.
SchemaSyntax syntaxOf(const std::filesystem::path& file);

// Throws std::runtime_error "origin:line:column: reason" for text that is not JSON (not YAML),
// and for YAML that has no JSON equivalent (a non-scalar key, a duplicate key, .inf, ...).
std::unique_ptr<rapidjson::Document> parseSchemaDocument(std::string_view text,
                                                         std::string_view origin,
                                                         SchemaSyntax syntax);

}  // namespace kpipe::schema::detail
