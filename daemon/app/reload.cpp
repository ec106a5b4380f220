#include "daemon/app/reload.h"

#include "daemon/kafka/handle.h"
#include "daemon/pipeline/router.h"
#include "daemon/sinks/http_sink.h"

#include <boost/asio/io_context.hpp>

#include <map>
#include <set>
#include <variant>

namespace kpipe::app {

std::vector<std::string> validate(const config::Config& config) {
  std::vector<std::string> errors;
  const auto& kafka = config.kafka;
  // librdkafka knows its properties: ask it, as `run` would, for each kind of client.
  for (const auto* specific : {&kafka.consumer_properties, &kafka.producer_properties}) {
    auto conf = kafka::makeConf({&kafka.properties, specific});
    if (auto* error = std::get_if<std::string>(&conf)) {
      errors.push_back(config.file.string() + ": " + *error);
    }
  }
  for (const auto& p : config.pipelines) {
    // Compiles the schemas exactly as `run` would.
    auto router = pipeline::Router::build(p);
    if (auto* error = std::get_if<std::string>(&router)) {
      errors.push_back(p.where.str() + ": pipeline " + p.name + ": " + *error);
    }
    // Builds the HTTP sink as `run` would (URL, method, headers, CA file); connects nowhere.
    if (p.output.http) {
      boost::asio::io_context io;
      auto sink = sinks::HttpSink::create(io, *p.output.http);
      if (auto* error = std::get_if<std::string>(&sink)) {
        errors.push_back(p.where.str() + ": pipeline " + p.name + ": " + *error);
      }
    }
  }
  return errors;
}

Candidate prepare(const std::filesystem::path& file, const LoadedConfig* running,
                  const config::EnvLookup& env) {
  Candidate out;
  auto loaded = config::loadConfig(file, env);
  for (const auto& e : loaded.errors) out.errors.push_back(e.str());
  if (!loaded.ok()) return out;
  config::Config& config = *loaded.config;
  out.errors = validate(config);
  auto files = readSchemaFiles(config);
  if (auto* error = std::get_if<std::string>(&files)) out.errors.push_back(*error);
  if (!out.errors.empty()) return out;
  SchemaFiles& schema_files = std::get<SchemaFiles>(files);
  if (running != nullptr) {
    if (running->config.kafka.embedded() != config.kafka.embedded()) {
      out.errors.push_back(config.file.string() +
                           ": kafka.bootstrap: switching between the embedded broker and a "
                           "cluster needs a restart");
    }
    for (auto& line :
         checkSchemaEvolution(running->config, config, &running->schema_files, &schema_files)) {
      out.errors.push_back(std::move(line));
    }
  }
  if (out.errors.empty()) out.loaded = LoadedConfig{std::move(config), std::move(schema_files)};
  return out;
}

const std::string& storeFingerprint(const config::Config& config, const config::PipelineSpec& p) {
  static const std::string kNone;
  if (!p.dedup || p.dedup->store.empty()) return kNone;
  auto it = config.stores.find(p.dedup->store);
  return it == config.stores.end() ? kNone : it->second.fingerprint;
}

ReloadPlan plan(const LoadedConfig& running, const LoadedConfig& next) {
  ReloadPlan out;
  std::map<std::string, const config::PipelineSpec*> before;
  for (const auto& p : running.config.pipelines) before[p.name] = &p;
  const bool kafka_changed = running.config.kafka_fingerprint != next.config.kafka_fingerprint;
  for (const auto& p : next.config.pipelines) {
    auto it = before.find(p.name);
    if (it == before.end()) {
      out.added.push_back(p.name);
      continue;
    }
    const config::PipelineSpec& old = *it->second;
    before.erase(it);
    const bool same =
        !kafka_changed && old.fingerprint == p.fingerprint &&
        storeFingerprint(running.config, old) == storeFingerprint(next.config, p) &&
        schemaFilesOf(old, running.schema_files) == schemaFilesOf(p, next.schema_files);
    (same ? out.unchanged : out.changed).push_back(p.name);
  }
  for (const auto& [name, spec] : before) out.removed.push_back(name);

  const auto& http_before = running.config.http;
  const auto& http_after = next.config.http;
  if (http_before.enabled != http_after.enabled ||
      http_before.listen_address != http_after.listen_address ||
      http_before.listen_port != http_after.listen_port) {
    out.need_restart.push_back("http.listen");
  }
  if (running.config.kafka.embedded() &&
      (running.config.kafka.embedded_broker.brokers != next.config.kafka.embedded_broker.brokers)) {
    out.need_restart.push_back("kafka.embedded.brokers");
  }
  out.log_changed = running.config.log.format != next.config.log.format ||
                    running.config.log.level != next.config.log.level;
  return out;
}

}  // namespace kpipe::app
