#include "daemon/app/schema_evolution.h"

#include "daemon/schema/compat.h"
#include "daemon/schema/explain.h"

#include <algorithm>
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

// Schema documents by file, each read once (from disk, or from a snapshot when one is given);
// they outlive every comparison that uses them.
class Documents {
 public:
  explicit Documents(const SchemaFiles* snapshot) : snapshot_(snapshot) {}

  const rapidjson::Value* get(const fs::path& file, std::string& error) {
    auto it = documents_.find(file);
    if (it == documents_.end()) {
      auto loaded = load(file);
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

  // The file's bytes as this config saw them.
  std::optional<std::string> bytes(const fs::path& file) const {
    if (snapshot_ == nullptr) return readBytes(file);
    auto it = snapshot_->find(file);
    if (it == snapshot_->end()) return std::nullopt;
    return it->second;
  }

 private:
  static std::optional<std::string> readBytes(const fs::path& file) {
    std::ifstream stream(file, std::ios::binary);
    if (!stream) return std::nullopt;
    return std::string((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  }

  std::variant<std::unique_ptr<rapidjson::Document>, std::string> load(const fs::path& file) {
    if (snapshot_ == nullptr) return schema::loadSchemaDocument(file);
    auto it = snapshot_->find(file);
    if (it == snapshot_->end()) return file.string() + ": not there when that config was loaded";
    return schema::parseSchemaDocument(file, it->second);
  }

  const SchemaFiles* snapshot_;
  std::map<fs::path, std::unique_ptr<rapidjson::Document>> documents_;
  std::map<fs::path, std::string> errors_;
};

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
                     const fs::path& base_dir, Documents& old_documents, Documents& new_documents,
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
    const rapidjson::Value* new_schema = new_documents.get(new_rule.file, error);
    if (new_schema == nullptr) {
      out.push_back(label + ": cannot compare: " + error);
      continue;
    }
    static const rapidjson::Value kAcceptAll(rapidjson::kObjectType);
    const rapidjson::Value* old_schema = &kAcceptAll;
    if (old_rule.kind == Rule::Kind::File) {
      old_schema = old_documents.get(old_rule.file, error);
      if (old_schema == nullptr) {
        out.push_back(label + ": cannot compare with " + old_rule.file.string() + ": " + error);
        continue;
      }
      // Unchanged, and nothing it refers to can have changed.
      auto old_bytes = old_documents.bytes(old_rule.file);
      if (old_bytes && old_bytes == new_documents.bytes(new_rule.file) &&
          !refersToOtherDocuments(*new_schema)) {
        continue;
      }
    }
    schema::CompatOptions options;
    options.old_base = old_rule.file.string();
    options.new_base = new_rule.file.string();
    options.resolve_old = old_documents.resolver();
    options.resolve_new = new_documents.resolver();
    for (const auto& incompatibility : schema::checkGrowthOnly(*old_schema, *new_schema, options)) {
      out.push_back(label + ": " + incompatibility.str());
    }
  }
}

// The directories a pipeline's schemas may read files from (schema/validator.cpp: a schema's
// `$ref`s stay under its own directory).
// The schema files a pipeline names itself (the single one, or one per event type).
std::set<fs::path> schemaRootsOf(const PipelineSpec& pipeline) {
  std::set<fs::path> roots;
  if (pipeline.schema.file) roots.insert(*pipeline.schema.file);
  for (const auto& [type, file] : pipeline.schema.types) roots.insert(file);
  return roots;
}

std::set<fs::path> schemaDirsOf(const PipelineSpec& pipeline) {
  std::set<fs::path> dirs;
  for (const auto& root : schemaRootsOf(pipeline)) dirs.insert(root.parent_path());
  return dirs;
}

bool isSchemaFile(const fs::path& file) {
  const auto extension = file.extension();
  return extension == ".json" || extension == ".yaml" || extension == ".yml";
}

bool isUnder(const fs::path& file, const fs::path& dir) {
  auto [end, unused] = std::mismatch(dir.begin(), dir.end(), file.begin(), file.end());
  return end == dir.end();
}

}  // namespace

std::variant<SchemaFiles, std::string> readSchemaFiles(const config::Config& config) {
  constexpr size_t kMaxFiles = 10'000;
  constexpr uintmax_t kMaxBytes = 64u << 20;
  std::set<fs::path> dirs;
  for (const auto& p : config.pipelines) dirs.merge(schemaDirsOf(p));
  SchemaFiles files;
  uintmax_t total = 0;
  for (const auto& dir : dirs) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (!isSchemaFile(it->path()) || files.contains(it->path())) continue;
      std::error_code type_ec;
      if (!it->is_regular_file(type_ec)) continue;
      if (files.size() == kMaxFiles) {
        return dir.string() + ": more than 10000 schema files under the schema directories";
      }
      std::ifstream stream(it->path(), std::ios::binary);
      if (!stream) return it->path().string() + ": cannot read";
      std::string bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
      total += bytes.size();
      if (total > kMaxBytes) {
        return dir.string() + ": more than 64 MiB of schema files under the schema directories";
      }
      files.emplace(it->path(), std::move(bytes));
    }
    if (ec) return dir.string() + ": " + ec.message();
  }
  return files;
}

SchemaFiles schemaFilesOf(const config::PipelineSpec& pipeline, const SchemaFiles& files) {
  SchemaFiles out;
  for (const auto& root : schemaRootsOf(pipeline)) {
    auto it = files.find(root);
    if (it == files.end()) continue;
    out.insert(*it);
    auto document = schema::parseSchemaDocument(root, it->second);
    auto* parsed = std::get_if<std::unique_ptr<rapidjson::Document>>(&document);
    if (parsed != nullptr && !refersToOtherDocuments(**parsed)) continue;
    // It names other documents (or cannot be read): any file next to it may be one of them.
    const fs::path dir = root.parent_path();
    for (auto next = files.lower_bound(dir); next != files.end() && isUnder(next->first, dir);
         ++next) {
      out.insert(*next);
    }
  }
  return out;
}

std::vector<std::string> checkSchemaEvolution(const config::Config& previous,
                                              const config::Config& current,
                                              const SchemaFiles* previous_files,
                                              const SchemaFiles* current_files) {
  std::map<std::string, const PipelineSpec*> before;
  for (const auto& p : previous.pipelines) before[p.name] = &p;
  Documents old_documents(previous_files);
  Documents new_documents(current_files);
  std::vector<std::string> out;
  for (const auto& p : current.pipelines) {
    auto it = before.find(p.name);
    if (it == before.end() || p.schema_evolution == PipelineSpec::SchemaEvolution::Any) continue;
    comparePipeline(*it->second, p, current.base_dir, old_documents, new_documents, out);
  }
  return out;
}

}  // namespace kpipe::app
