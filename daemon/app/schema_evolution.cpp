#include "daemon/app/schema_evolution.h"

#include "daemon/schema/compat.h"
#include "daemon/schema/explain.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <variant>

namespace kpipe::app {
namespace {

namespace fs = std::filesystem;
using config::PipelineSpec;
using config::SchemaSpec;

// Schema documents by file, each read once; they outlive every comparison that uses them.
class Documents {
 public:
  const rapidjson::Value* get(const fs::path& file, std::string& error) {
    auto it = documents_.find(file);
    if (it == documents_.end()) {
      auto loaded = schema::loadSchemaDocument(file);
      if (auto* why = std::get_if<std::string>(&loaded)) {
        errors_[file] = *why;
        it = documents_.emplace(file, nullptr).first;
      } else {
        it = documents_
                 .emplace(file, std::move(std::get<std::unique_ptr<rapidjson::Document>>(loaded)))
                 .first;
      }
    }
    if (it->second == nullptr) error = errors_[file];
    return it->second.get();
  }

  // `$ref`s to other files resolve next to the referring file, as `run` resolves them.
  schema::ReferenceResolver resolver() {
    return [this](const std::string& base, const std::string& uri) {
      schema::ReferencedDocument out;
      if (uri.find(':') != std::string::npos) {
        out.error = "not a file next to the schema";
        return out;
      }
      fs::path file = (fs::path(base).parent_path() / uri).lexically_normal();
      out.root = get(file, out.error);
      out.base = file.string();
      return out;
    };
  }

 private:
  std::map<fs::path, std::unique_ptr<rapidjson::Document>> documents_;
  std::map<fs::path, std::string> errors_;
};

std::optional<std::string> readBytes(const fs::path& file) {
  std::ifstream stream(file, std::ios::binary);
  if (!stream) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
}

bool refersToOtherDocuments(const rapidjson::Value& value) {
  if (value.IsObject()) {
    for (const auto& m : value.GetObject()) {
      if (m.name == "$ref" && m.value.IsString() && m.value.GetString()[0] != '#') return true;
      if (refersToOtherDocuments(m.value)) return true;
    }
  } else if (value.IsArray()) {
    for (const auto& v : value.GetArray()) {
      if (refersToOtherDocuments(v)) return true;
    }
  }
  return false;
}

// What a pipeline does with messages of one event type: accept them all (no schema, or an
// unknown type passed), reject them all (an unknown type refused), or validate them with a file.
struct Rule {
  enum class Kind { AcceptAll, RejectAll, File } kind;
  fs::path file;
};

// `type` nullopt: a type neither config names.
Rule ruleFor(const SchemaSpec& spec, const std::optional<std::string>& type) {
  if (spec.file) return {Rule::Kind::File, *spec.file};
  if (spec.types.empty()) return {Rule::Kind::AcceptAll, {}};
  if (type) {
    if (auto it = spec.types.find(*type); it != spec.types.end()) {
      return {Rule::Kind::File, it->second};
    }
  }
  return {spec.unknown_type == SchemaSpec::UnknownType::Pass ? Rule::Kind::AcceptAll
                                                             : Rule::Kind::RejectAll,
          {}};
}

std::string display(const fs::path& file, const fs::path& base_dir) {
  fs::path relative = file.lexically_relative(base_dir);
  return relative.empty() || *relative.begin() == ".." ? file.string() : relative.string();
}

void comparePipeline(const PipelineSpec& before, const PipelineSpec& after,
                     const fs::path& base_dir, Documents& documents,
                     std::vector<std::string>& out) {
  const std::string prefix = after.where.file + ": pipeline " + after.name;
  if (!before.schema.types.empty() && !after.schema.types.empty() &&
      before.schema.type_field != after.schema.type_field) {
    out.push_back(prefix + ": type_field changed from " + before.schema.type_field + " to " +
                  after.schema.type_field + ": cannot compare the per-type schemas");
    return;
  }
  std::set<std::optional<std::string>> types{std::nullopt};
  for (const auto* spec : {&before.schema, &after.schema}) {
    for (const auto& [type, file] : spec->types) types.insert(type);
  }
  std::set<std::pair<fs::path, fs::path>> compared;
  for (const auto& type : types) {
    const Rule old_rule = ruleFor(before.schema, type);
    const Rule new_rule = ruleFor(after.schema, type);
    if (old_rule.kind == Rule::Kind::RejectAll || new_rule.kind == Rule::Kind::AcceptAll) continue;
    if (new_rule.kind == Rule::Kind::RejectAll) {
      out.push_back(prefix + ": " +
                    (type ? "event type \"" + *type + "\" is no longer listed"
                          : std::string("event types not listed")) +
                    ": rejected now (unknown_type: error), accepted before");
      continue;
    }
    // The same pair of files can stand for several types.
    if (!compared.insert({old_rule.file, new_rule.file}).second) continue;
    const std::string label = prefix + ", schema " + display(new_rule.file, base_dir);
    std::string error;
    const rapidjson::Value* new_schema = documents.get(new_rule.file, error);
    if (new_schema == nullptr) {
      out.push_back(label + ": cannot compare: " + error);
      continue;
    }
    static const rapidjson::Value kAcceptAll(rapidjson::kObjectType);
    const rapidjson::Value* old_schema = &kAcceptAll;
    if (old_rule.kind == Rule::Kind::File) {
      old_schema = documents.get(old_rule.file, error);
      if (old_schema == nullptr) {
        out.push_back(label + ": cannot compare with " + old_rule.file.string() + ": " + error);
        continue;
      }
      // Unchanged, and nothing it refers to can have changed.
      auto old_bytes = readBytes(old_rule.file);
      if (old_bytes && old_bytes == readBytes(new_rule.file) &&
          !refersToOtherDocuments(*new_schema)) {
        continue;
      }
    }
    schema::CompatOptions options;
    options.old_base = old_rule.file.string();
    options.new_base = new_rule.file.string();
    options.resolve_old = documents.resolver();
    options.resolve_new = documents.resolver();
    for (const auto& incompatibility : schema::checkGrowthOnly(*old_schema, *new_schema, options)) {
      out.push_back(label + ": " + incompatibility.str());
    }
  }
}

}  // namespace

std::vector<std::string> checkSchemaEvolution(const config::Config& previous,
                                              const config::Config& current) {
  std::map<std::string, const PipelineSpec*> before;
  for (const auto& p : previous.pipelines) before[p.name] = &p;
  Documents documents;
  std::vector<std::string> out;
  for (const auto& p : current.pipelines) {
    auto it = before.find(p.name);
    if (it == before.end() || p.schema_evolution == PipelineSpec::SchemaEvolution::Any) continue;
    comparePipeline(*it->second, p, current.base_dir, documents, out);
  }
  return out;
}

}  // namespace kpipe::app
