#pragma once
// `kpipe explain`: what a schema says, and why a document fails it; and reading a schema file's
// JSON as written (for the outline and for compat.h's checks).
//
// Pure functions over files and streams; thread-safe.

#include "daemon/schema/rapidjson.h"

#include <filesystem>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kpipe::schema {

// A schema file's document as written (JSON, or YAML for .yaml/.yml), before its `$ref`s are
// resolved; or an error naming the file and what is wrong.
std::variant<std::unique_ptr<rapidjson::Document>, std::string> loadSchemaDocument(
    const std::filesystem::path& file);
// The same from `text`, the file's content read earlier (a snapshot).
std::variant<std::unique_ptr<rapidjson::Document>, std::string> parseSchemaDocument(
    const std::filesystem::path& file, std::string_view text);

// A readable outline of a schema: the tree of properties and items, each with its types,
// required mark ("*"), enum or const, bounds, format and pattern. Local `$ref`s are expanded
// (once per branch: a recursive schema says "recursive"). At most 10,000 lines, then a line
// saying it was cut. Ends with a newline.
std::string outline(const rapidjson::Value& schema);

// `kpipe explain SCHEMA [DOC|-]` (args after "explain"). With a document ("-" = `in`): prints
// "valid" and returns 0, or prints every failure, one per line, and returns 1. Without one:
// prints the outline and returns 0. Usage, unreadable files, schemas that do not compile and
// documents that are not JSON or nest deeper than 128 levels (as a pipeline refuses them): a
// message on `err` and 2.
int explainCommand(const std::vector<std::string_view>& args, std::istream& in, std::ostream& out,
                   std::ostream& err);

}  // namespace kpipe::schema
