// config/kpipe.schema.json and config/pipeline.schema.json against the loader: the keys the
// loader asks for while reading testdata/full (every key, every store type, both schema forms,
// both outputs) must be exactly the keys the schemas declare, map by map, with the x_file
// variants of the free-text strings, `additionalProperties: false` where the loader refuses
// unknown keys, and the same choices for every enum. A key added to one and not the other fails
// here. (Whether both accept and refuse the same files: tests/integration/config_schema_test.py.)

#include "daemon/config/loader.h"
#include "daemon/config/reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace kpipe::config {
namespace {

namespace fs = std::filesystem;

fs::path sourceDir() {
  const char* dir = std::getenv("KPIPE_SOURCE_DIR");
  return dir != nullptr && *dir != '\0' ? fs::path(dir) : fs::path(KPIPE_SOURCE_DIR_DEFAULT);
}

// A JSON Schema, read as YAML (JSON is YAML), with its local $refs followed. (Nodes are rebound
// with reset(): yaml-cpp's operator= would overwrite the node they point at.)
class SchemaFile {
 public:
  explicit SchemaFile(const fs::path& file) : root_(YAML::LoadFile(file.string())) {}

  const YAML::Node& root() const { return root_; }

  YAML::Node deref(YAML::Node node) const {
    for (int hops = 0; node.IsMap() && node["$ref"] && hops < 16; ++hops) {
      std::string ref = node["$ref"].as<std::string>();
      EXPECT_TRUE(ref.starts_with("#/definitions/")) << ref;
      node.reset(root_["definitions"][ref.substr(std::string("#/definitions/").size())]);
      EXPECT_TRUE(node.IsDefined()) << ref;
    }
    return node;
  }

  // The properties a value matching `node` may have: its own and those of its anyOf/oneOf/allOf
  // branches (not if/then/not, which only restrict).
  std::map<std::string, YAML::Node> properties(YAML::Node node) const {
    std::map<std::string, YAML::Node> out;
    node.reset(deref(node));
    if (!node.IsMap()) return out;
    if (node["properties"]) {
      for (const auto& entry : node["properties"]) {
        out.emplace(entry.first.as<std::string>(), entry.second);
      }
    }
    for (const char* combinator : {"anyOf", "oneOf", "allOf"}) {
      if (!node[combinator]) continue;
      for (const auto& branch : node[combinator]) out.merge(properties(branch));
    }
    return out;
  }

  // The schema of the map at `path` ("stores.mem", "output.http"; "" for the root): a key
  // present in properties, else an entry of a map of names (additionalProperties).
  YAML::Node at(const std::string& path) const {
    YAML::Node node = deref(root_);
    std::stringstream segments(path);
    std::string segment;
    while (!path.empty() && std::getline(segments, segment, '.')) {
      auto props = properties(node);
      if (auto it = props.find(segment); it != props.end()) {
        node.reset(mapBranch(it->second));
      } else if (node["additionalProperties"] && node["additionalProperties"].IsMap()) {
        node.reset(mapBranch(node["additionalProperties"]));
      } else {
        ADD_FAILURE() << "schema has no " << segment << " in " << path;
        return YAML::Node();
      }
    }
    return node;
  }

  // The enum choices a value matching `node` may take (through anyOf/oneOf/allOf), sorted.
  std::set<std::string> choices(YAML::Node node) const {
    std::set<std::string> out;
    node.reset(deref(node));
    if (!node.IsMap()) return out;
    if (node["enum"]) {
      for (const auto& value : node["enum"]) out.insert(value.as<std::string>());
    }
    for (const char* combinator : {"anyOf", "oneOf", "allOf"}) {
      if (!node[combinator]) continue;
      for (const auto& branch : node[combinator]) out.merge(choices(branch));
    }
    return out;
  }

 private:
  // For a property that is a string or a map (schema: path or {type_field, ...}), the branch
  // that describes the map.
  YAML::Node mapBranch(YAML::Node node) const {
    node.reset(deref(node));
    if (node["properties"] || node["additionalProperties"]) return node;
    for (const char* combinator : {"anyOf", "oneOf"}) {
      if (!node[combinator]) continue;
      for (const auto& branch : node[combinator]) {
        YAML::Node candidate = deref(branch);
        if (candidate["properties"] || candidate["additionalProperties"]) return candidate;
      }
    }
    return node;
  }

  YAML::Node root_;
};

struct Group {
  YAML::Node schema;               // the map's schema, as SchemaFile::at found it
  std::string where;               // the first map that led there, for messages
  detail::KeyInventory::Map keys;  // union over every map that led there
};

std::string joined(const std::set<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

class SchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    detail::RecordKeys record(inventory_);
    const fs::path config = sourceDir() / "tests/unit/config/testdata/full/kpipe.yaml";
    LoadResult result = loadConfig(config, [](std::string_view) { return std::nullopt; });
    std::string errors;
    for (const auto& e : result.errors) errors += e.str() + "\n";
    ASSERT_TRUE(result.ok()) << errors;
    ASSERT_EQ(result.config->pipelines.size(), 4u);
  }

  // The recorded maps of the files `file` matches, grouped by the schema node they map to.
  std::vector<Group> groups(const SchemaFile& schema, bool main_file) {
    std::vector<Group> out;
    for (const auto& [where, keys] : inventory_.maps) {
      const bool is_main = where.first.ends_with("kpipe.yaml");
      if (is_main != main_file) continue;
      YAML::Node node = schema.at(where.second);
      if (!node.IsDefined()) continue;
      auto it =
          std::find_if(out.begin(), out.end(), [&](const Group& g) { return g.schema.is(node); });
      if (it == out.end()) {
        out.push_back(Group{
            node, where.first + ": " + (where.second.empty() ? "(top level)" : where.second), {}});
        it = std::prev(out.end());
      }
      it->keys.keys.insert(keys.keys.begin(), keys.keys.end());
      it->keys.file_keys.insert(keys.file_keys.begin(), keys.file_keys.end());
      it->keys.what.insert(keys.what.begin(), keys.what.end());
      it->keys.names |= keys.names;
      it->keys.string_names |= keys.string_names;
    }
    return out;
  }

  void compare(const std::string& schema_file, bool main_file, size_t min_maps) {
    SchemaFile schema(sourceDir() / "config" / schema_file);
    std::vector<Group> found = groups(schema, main_file);
    EXPECT_GE(found.size(), min_maps) << "testdata/full no longer reaches every map";
    for (const Group& group : found) {
      SCOPED_TRACE(schema_file + " at " + group.where);
      const YAML::Node additional = group.schema["additionalProperties"];
      if (group.keys.names) {
        // A map of names: any key, each value described by additionalProperties.
        EXPECT_TRUE(additional && additional.IsMap()) << "expected additionalProperties: {...}";
        EXPECT_FALSE(group.schema["properties"]) << "a map of names lists no properties";
        const YAML::Node patterns = group.schema["patternProperties"];
        EXPECT_EQ(group.keys.string_names, patterns && patterns["_file$"])
            << "NAME_file entries: patternProperties {\"_file$\": ...} exactly where the loader "
               "reads them";
        continue;
      }
      EXPECT_TRUE(additional && additional.IsScalar() && additional.as<std::string>() == "false")
          << "the loader refuses unknown keys here: additionalProperties: false";
      std::set<std::string> expected = group.keys.keys;
      for (const auto& key : group.keys.file_keys) expected.insert(key + "_file");
      std::set<std::string> declared;
      const auto properties = schema.properties(group.schema);
      for (const auto& [key, value] : properties) declared.insert(key);
      std::set<std::string> missing, extra;
      std::set_difference(expected.begin(), expected.end(), declared.begin(), declared.end(),
                          std::inserter(missing, missing.end()));
      std::set_difference(declared.begin(), declared.end(), expected.begin(), expected.end(),
                          std::inserter(extra, extra.end()));
      EXPECT_TRUE(missing.empty()) << "the loader reads, the schema lacks: " << joined(missing);
      EXPECT_TRUE(extra.empty()) << "the schema declares, the loader does not read: "
                                 << joined(extra);
      // Choices: the loader's "one of a, b, c" against the schema's enum.
      for (const auto& [key, what] : group.keys.what) {
        constexpr std::string_view kOneOf = "one of ";
        if (!what.starts_with(kOneOf) || !properties.contains(key)) continue;
        std::set<std::string> words;
        std::stringstream list(what.substr(kOneOf.size()));
        for (std::string word; std::getline(list, word, ',');) {
          words.insert(word.substr(word.find_first_not_of(' ')));
        }
        EXPECT_EQ(schema.choices(properties.at(key)), words) << "choices of " << key;
      }
    }
  }

  detail::KeyInventory inventory_;
};

TEST_F(SchemaTest, KpipeYamlKeysAreTheSchemasKeys) { compare("kpipe.schema.json", true, 10); }

TEST_F(SchemaTest, PipelineKeysAreTheSchemasKeys) { compare("pipeline.schema.json", false, 10); }

TEST_F(SchemaTest, FileVariantsAreExactlyTheFreeTextStrings) {
  // The list a user reads in README.md and the schema descriptions.
  std::set<std::string> file_keys;
  for (const auto& [where, keys] : inventory_.maps) {
    for (const auto& key : keys.file_keys) {
      file_keys.insert(
          (where.first.ends_with("kpipe.yaml") ? "kpipe.yaml " : "pipeline ") +
          (where.second.starts_with("stores.") ? std::string("stores.*") : where.second) + "." +
          key);
    }
  }
  EXPECT_EQ(file_keys, (std::set<std::string>{
                           "kpipe.yaml kafka.bootstrap",
                           "kpipe.yaml stores.*.prefix",
                           "kpipe.yaml stores.*.url",
                           "pipeline errors.audit_topic",
                           "pipeline errors.topic",
                           "pipeline input.group",
                           "pipeline input.topic",
                           "pipeline output.http.url",
                           "pipeline output.topic",
                       }));
}

TEST_F(SchemaTest, SchemasAreDraft07AndDescribeEveryProperty) {
  for (const char* name : {"kpipe.schema.json", "pipeline.schema.json"}) {
    SCOPED_TRACE(name);
    SchemaFile schema(sourceDir() / "config" / name);
    EXPECT_EQ(schema.root()["$schema"].as<std::string>(),
              "http://json-schema.org/draft-07/schema#");
    // Editors show descriptions on hover: every property has one (or its $ref target has).
    std::function<void(const YAML::Node&, const std::string&)> visit =
        [&](const YAML::Node& node, const std::string& path) {
          if (!node.IsMap()) return;
          if (node["properties"]) {
            for (const auto& entry : node["properties"]) {
              const std::string key = path + "." + entry.first.as<std::string>();
              YAML::Node value = entry.second;
              EXPECT_TRUE(value["description"] || schema.deref(value)["description"])
                  << key << " has no description";
              visit(schema.deref(value), key);
            }
          }
          for (const char* combinator : {"anyOf", "oneOf", "allOf"}) {
            if (!node[combinator]) continue;
            for (const auto& branch : node[combinator]) visit(schema.deref(branch), path);
          }
          if (node["additionalProperties"] && node["additionalProperties"].IsMap()) {
            visit(schema.deref(node["additionalProperties"]), path + ".*");
          }
        };
    visit(schema.root(), "");
  }
}

}  // namespace
}  // namespace kpipe::config
