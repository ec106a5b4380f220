#include "daemon/config/loader.h"

#include "daemon/config/reader.h"
#include "daemon/config/redact.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>

namespace kpipe::config {

namespace fs = std::filesystem;
using detail::Context;
using detail::Diagnostics;
using detail::Field;
using detail::kMaxConfigFileBytes;
using detail::Need;
using detail::ObjectReader;
using detail::Parsed;
using detail::Parser;
using detail::parseYamlFile;

std::string SourceLocation::str() const {
  if (line <= 0) return file;
  if (column <= 0) return file + ":" + std::to_string(line);
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string ConfigError::str() const {
  std::string out = where.str() + ": ";
  if (!key_path.empty()) out += key_path + ": ";
  return out + message;
}

namespace {

Field documentRoot(const YAML::Node& root) { return Field{"", "", YAML::Mark(), root}; }

// "host:port" or "[v6 address]:port".
Parser<std::pair<std::string, uint16_t>> hostPort() {
  using Result = Parsed<std::pair<std::string, uint16_t>>;
  return {"host:port", [](std::string_view text) {
            auto fail = [&] {
              return Result::fail(detail::quote(text) +
                                  " is not host:port (e.g. 127.0.0.1:9464 or [::1]:9464)");
            };
            size_t colon = text.rfind(':');
            if (colon == text.npos) return fail();
            std::string_view host = text.substr(0, colon);
            std::string_view port_text = text.substr(colon + 1);
            if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
              host = host.substr(1, host.size() - 2);
            } else if (host.find(':') != host.npos) {
              return fail();  // an IPv6 address needs brackets, or the port is ambiguous
            }
            if (host.empty()) return fail();
            auto port = detail::integerIn<uint16_t>(0, 65535).parse(port_text);
            if (!port.value) {
              return Result::fail(detail::quote(text) + ": port must be a number from 0 to 65535");
            }
            return Result::ok({std::string(host), *port.value});
          }};
}

// --- kpipe.yaml -------------------------------------------------------------------------------

void readKafka(ObjectReader& r, KafkaSpec& kafka) {
  r.scalar("bootstrap", kafka.bootstrap, detail::nonEmptyString());
  r.object("embedded", Need::Optional, [&](ObjectReader& e) {
    e.scalar("brokers", kafka.embedded_broker.brokers, detail::integerIn(1));
    e.scalar("partitions", kafka.embedded_broker.default_partitions, detail::integerIn(1));
  });
  // Values pass through to librdkafka as they are; NAME_file reads NAME's value from a file
  // (librdkafka has no property ending in "_file": its file settings end in ".location").
  auto readProperties = [&](const char* key, std::map<std::string, std::string>& out) {
    r.object(key, Need::Optional, [&](ObjectReader& p) {
      p.forEachString([&](const std::string& name, const Field& property) {
        if (auto value = p.context().scalar(property, detail::anyString())) {
          out[name] = *value;
          if (property.reads_file) kafka.secret_properties.insert(name);
        }
      });
    });
  };
  readProperties("properties", kafka.properties);
  readProperties("consumer_properties", kafka.consumer_properties);
  readProperties("producer_properties", kafka.producer_properties);
}

void readHttp(ObjectReader& r, HttpSpec& http) {
  std::pair<std::string, uint16_t> listen;
  if (r.scalar("listen", listen, hostPort())) {
    http.listen_address = listen.first;
    http.listen_port = listen.second;
  }
  r.scalar("enabled", http.enabled, detail::boolean());
}

// redis://[[user]:password@]host[:port][/db]; the reason when it is not.
std::optional<std::string> parseRedisUrl(std::string_view url, StoreSpec::Redis& out) {
  constexpr std::string_view scheme = "redis://";
  if (!url.starts_with(scheme)) {
    return "expected redis://[[user]:password@]host[:port][/db] (rediss:// and unix sockets "
           "are not supported)";
  }
  std::string_view rest = url.substr(scheme.size());
  std::string_view path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  std::string masked(scheme);
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view credentials = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = credentials.find(':');
    if (colon == std::string_view::npos) return "credentials must be user:password or :password";
    out.username = std::string(credentials.substr(0, colon));
    out.password = std::string(credentials.substr(colon + 1));
    masked += out.username + ":***@";
  }
  std::string_view host = rest;
  if (!rest.empty() && rest.front() == '[') {  // [::1]:6379
    auto close = rest.find(']');
    if (close == std::string_view::npos) return "unclosed [ in host";
    host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return "expected :port after ]";
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    rest = rest.substr(colon);
  } else {
    rest = {};
  }
  if (host.empty()) return "no host";
  out.host = std::string(host);
  if (!rest.empty()) {
    unsigned port = 0;
    auto digits = rest.substr(1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size() || port == 0 || port > 65535) {
      return "port " + detail::quote(digits) + " is not a number from 1 to 65535";
    }
    out.port = static_cast<uint16_t>(port);
  }
  if (!path.empty()) {
    auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), out.db);
    if (ec != std::errc() || end != path.data() + path.size() || out.db < 0) {
      return "database " + detail::quote(path) + " is not a number (redis://host:port/0)";
    }
  }
  masked += (out.host.find(':') != std::string::npos ? "[" + out.host + "]" : out.host) + ":" +
            std::to_string(out.port) + "/" + std::to_string(out.db);
  out.display = masked;
  return std::nullopt;
}

void readStore(ObjectReader& r, StoreSpec& store, const fs::path& base_dir) {
  std::optional<Field> type = r.field("type", Need::Required);
  std::optional<std::string> type_name;
  if (type) type_name = r.context().scalar(*type, detail::nonEmptyString());
  if (type_name == "memory") {
    store.type = StoreType::Memory;
  } else if (type_name == "redis") {
    store.type = StoreType::Redis;
  } else if (type_name == "lmdb") {
    store.type = StoreType::Lmdb;
  } else {
    if (type_name) {
      r.context().error(*type, "unknown store type " + detail::quote(*type_name) +
                                   " (use memory, redis or lmdb)");
    }
    r.ignoreUnknownKeys();
    return;
  }
  r.scalar("ttl", store.ttl, detail::durationAtLeast(Duration(1)));
  r.scalar("reservation_ttl", store.reservation_ttl, detail::durationAtLeast(Duration(1)));
  switch (store.type) {
    case StoreType::Memory:
      r.scalar("max_entries", store.max_entries, detail::integerIn<uint64_t>(1));
      break;
    case StoreType::Redis: {
      if (auto url = r.stringField("url", Need::Required)) {
        if (auto text = r.context().scalar(*url, detail::nonEmptyString())) {
          if (auto error = parseRedisUrl(*text, store.redis)) {
            r.context().error(*url, "redis url: " + *error);
          }
        }
      }
      r.scalar("timeout", store.timeout, detail::durationAtLeast(Duration(1)));
      r.scalar("prefix", store.prefix, detail::anyString());
      break;
    }
    case StoreType::Lmdb:
      if (auto path = r.field("path", Need::Required)) {
        if (auto text = r.context().scalar(*path, detail::nonEmptyString())) {
          store.path = (base_dir / *text).lexically_normal();
        }
      }
      r.scalar("map_size", store.map_size, detail::sizeAtLeast(1 << 20));
      break;
  }
  // A field of another store type: say whose it is, rather than "unknown key".
  static const std::pair<const char*, const char*> kTypeFields[] = {
      {"max_entries", "memory"}, {"url", "redis"},    {"url_file", "redis"},
      {"timeout", "redis"},      {"prefix", "redis"}, {"prefix_file", "redis"},
      {"path", "lmdb"},          {"map_size", "lmdb"}};
  for (const auto& [key, owner] : kTypeFields) {
    if (*type_name != owner && r.has(key)) {
      r.field(key);
      r.error(key, std::string(key) + " applies to " + owner + " stores, not " + *type_name);
    }
  }
}

void readLog(ObjectReader& r, LogSpec& log) {
  r.scalar("format", log.format,
           detail::oneOf<LogFormat>({{"json", LogFormat::Json}, {"text", LogFormat::Text}}));
  r.scalar("level", log.level,
           detail::oneOf<LogLevel>({{"debug", LogLevel::Debug},
                                    {"info", LogLevel::Info},
                                    {"warn", LogLevel::Warn},
                                    {"error", LogLevel::Error}}));
}

struct PipelineFile {
  std::string display;  // as errors name it: relative to the working directory when kpipe.yaml is
  fs::path path;
};

// Lists the pipeline files of `dir`, sorted; tells `report` when the directory is unusable.
std::optional<std::vector<PipelineFile>> listPipelineFiles(
    const fs::path& dir, const fs::path& display_dir,
    const std::function<void(std::string)>& report) {
  std::error_code ec;
  fs::file_status status = fs::status(dir, ec);
  if (!fs::exists(status)) {
    report("pipelines directory " + dir.string() + " does not exist");
    return std::nullopt;
  }
  if (!fs::is_directory(status)) {
    report(dir.string() + " is not a directory");
    return std::nullopt;
  }
  std::vector<PipelineFile> files;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    auto ends_with = [&](std::string_view suffix) { return name.ends_with(suffix); };
    if (!ends_with(".yaml") && !ends_with(".yml")) continue;
    // Test fixtures live next to the pipeline they test; dotfiles are editor backups and locks.
    if (ends_with(".test.yaml") || ends_with(".test.yml") || name.starts_with(".")) continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    files.push_back(PipelineFile{(display_dir / name).string(), it->path()});
  }
  if (ec) {
    report("cannot read pipelines directory " + dir.string() + ": " + ec.message());
    return std::nullopt;
  }
  std::sort(files.begin(), files.end(),
            [](const PipelineFile& a, const PipelineFile& b) { return a.path < b.path; });
  return files;
}

// What reading kpipe.yaml tells the reading of the pipeline files.
struct MainResult {
  std::optional<std::vector<PipelineFile>> pipeline_files;
  // False when the stores section could not be read: then dedup.store references go unchecked
  // rather than each being reported as unknown.
  bool stores_known = true;
};

// shutdown: {drain_timeout} and reload: {watch, debounce}.
void readOperations(ObjectReader& r, Config& config) {
  r.object("shutdown", Need::Optional, [&](ObjectReader& s) {
    s.scalar("drain_timeout", config.drain_timeout,
             detail::durationBetween(Duration(1), std::chrono::minutes(10)));
  });
  r.object("reload", Need::Optional, [&](ObjectReader& s) {
    s.scalar("watch", config.reload_watch, detail::boolean());
    s.scalar("debounce", config.reload_debounce,
             detail::durationBetween(Duration(0), std::chrono::seconds(10)));
  });
}

MainResult readMain(Context& context, const YAML::Node& root, const fs::path& file,
                    Config& config) {
  MainResult result;
  ObjectReader r(context, documentRoot(root));
  const size_t kafka_secrets = context.secretFiles().size();
  r.object("kafka", Need::Optional, [&](ObjectReader& k) { readKafka(k, config.kafka); });
  // A secret file's content counts too: a changed password must restart the clients.
  if (root.IsMap() && root["kafka"]) {
    config.kafka_fingerprint = YAML::Dump(root["kafka"]) + context.secretDigests(kafka_secrets);
  }
  r.object("http", Need::Optional, [&](ObjectReader& h) { readHttp(h, config.http); });

  std::optional<Field> pipelines_field = r.field("pipelines");
  std::optional<std::string> pipelines = "pipelines";
  if (pipelines_field) pipelines = context.scalar(*pipelines_field, detail::nonEmptyString());
  if (pipelines) {
    fs::path resolved = (config.base_dir / *pipelines).lexically_normal();
    // "pipelines/" normalizes to a path with an empty last component.
    if (resolved.filename().empty()) resolved = resolved.parent_path();
    config.pipelines_dir = resolved;
    fs::path display_dir = (file.parent_path() / *pipelines).lexically_normal();
    result.pipeline_files = listPipelineFiles(resolved, display_dir, [&](std::string message) {
      if (pipelines_field) {
        r.context().error(*pipelines_field, std::move(message));
      } else {
        context.diagnostics().fileError("pipelines", std::move(message));
      }
    });
  }

  std::optional<Field> stores = r.field("stores");
  if (stores) {
    result.stores_known = stores->value.IsMap() || stores->value.IsNull();
    detail::readObject(context, *stores, [&](ObjectReader& s) {
      s.forEach([&](const Field& entry) {
        StoreSpec& store = config.stores[entry.name];
        store.name = entry.name;
        store.fingerprint = YAML::Dump(entry.value);
        store.where = SourceLocation{context.diagnostics().file(), entry.key_mark.line + 1,
                                     entry.key_mark.column + 1};
        const size_t store_secrets = context.secretFiles().size();
        detail::readObject(context, entry,
                           [&](ObjectReader& e) { readStore(e, store, config.base_dir); });
        store.fingerprint += context.secretDigests(store_secrets);
      });
    });
  }
  r.object("log", Need::Optional, [&](ObjectReader& l) { readLog(l, config.log); });
  readOperations(r, config);
  r.finish();
  return result;
}

// --- pipeline files ---------------------------------------------------------------------------

struct PipelineContext {
  fs::path base_dir;
  const std::map<std::string, StoreSpec>* stores;  // nullptr: references are not checked
  std::map<std::string, std::string>* names;       // pipeline name -> file that defined it
  std::vector<fs::path>* secret_files;             // x_file files read, appended to
};

// Resolves a path against kpipe.yaml's directory and checks the file is there now, so a typo
// fails `kpipe check` rather than the first message. `kind` names it: "schema file".
std::optional<fs::path> existingFile(Context& context, const Field& field, const fs::path& base_dir,
                                     std::string_view kind) {
  std::optional<std::string> text = context.scalar(field, detail::nonEmptyString());
  if (!text) return std::nullopt;
  fs::path resolved = (base_dir / *text).lexically_normal();
  std::error_code ec;
  fs::file_status status = fs::status(resolved, ec);
  if (!fs::exists(status)) {
    context.error(field, std::string(kind) + " " + resolved.string() +
                             " does not exist (relative paths start at the directory of "
                             "kpipe.yaml)");
    return std::nullopt;
  }
  if (!fs::is_regular_file(status)) {
    context.error(field, std::string(kind) + " " + resolved.string() + " is not a regular file");
    return std::nullopt;
  }
  return resolved;
}

std::optional<fs::path> schemaFile(Context& context, const Field& field, const fs::path& base_dir) {
  return existingFile(context, field, base_dir, "schema file");
}

// output.http: where the output goes when it is an HTTP endpoint (sinks/http_sink.h).
void readHttpSink(ObjectReader& h, const fs::path& base_dir, HttpSinkSpec& http) {
  Context& context = h.context();
  http.url_secret = h.has("url_file");
  if (h.scalar("url", http.url, detail::nonEmptyString(), Need::Required)) {
    std::string_view url = http.url;
    std::string_view rest = url.starts_with("https://")  ? url.substr(8)
                            : url.starts_with("http://") ? url.substr(7)
                                                         : std::string_view{};
    // The URL may carry credentials (userinfo, a token in the query or, from url_file, anywhere).
    const std::string shown =
        http.url_secret ? std::string("the URL in the file") : detail::quote(redactUrl(url));
    if (rest.data() == nullptr) {
      h.error(http.url_secret ? "url_file" : "url", shown + " is not an http:// or https:// URL");
    } else if (rest.empty() || rest.front() == '/' || rest.front() == ':') {
      h.error(http.url_secret ? "url_file" : "url", shown + " has no host");
    }
  }
  h.scalar("method", http.method,
           detail::oneOf<std::string>({{"POST", "POST"}, {"PUT", "PUT"}, {"PATCH", "PATCH"}}));
  h.object("headers", Need::Optional, [&](ObjectReader& headers) {
    headers.forEachString([&](const std::string& name, const Field& header) {
      if (auto value = context.scalar(header, detail::anyString())) {
        http.headers[name] = *value;
        if (header.reads_file) http.secret_headers.insert(name);
      }
    });
  });
  h.scalar("timeout", http.timeout, detail::durationAtLeast(Duration(1)));
  h.scalar("connections", http.connections, detail::integerIn<uint32_t>(1, 4096));
  if (std::optional<Field> statuses = h.field("retry_statuses")) {
    if (!statuses->value.IsSequence()) {
      context.error(*statuses, "expected a list of HTTP status codes, got " +
                                   detail::describe(statuses->value));
    } else {
      http.retry_statuses.clear();
      for (size_t i = 0; i < statuses->value.size(); ++i) {
        Field item{"", statuses->path + "[" + std::to_string(i) + "]", statuses->value[i].Mark(),
                   statuses->value[i]};
        if (auto code = context.scalar(item, detail::integerIn<int>(100, 599))) {
          http.retry_statuses.push_back(*code);
        }
      }
    }
  }
  if (std::optional<Field> ca = h.field("ca_file")) {
    if (auto path = existingFile(context, *ca, base_dir, "CA file")) http.ca_file = *path;
  }
  const bool tls_given = h.object("tls", Need::Optional, [&](ObjectReader& tls) {
    tls.scalar("verify", http.tls_verify, detail::boolean());
  });
  if (tls_given && http.url.starts_with("http://")) {
    h.error("tls", "tls applies to https:// URLs; this one is http://");
  } else if (!http.tls_verify && h.has("ca_file")) {
    h.error("ca_file", "not used with tls.verify: false (nothing is verified); remove one of them");
  }
}

void readSchema(Context& context, const Field& field, const fs::path& base_dir,
                SchemaSpec& schema) {
  if (field.value.IsScalar()) {
    schema.file = schemaFile(context, field, base_dir);
    return;
  }
  if (!field.value.IsMap()) {
    context.error(field, "expected a schema file path or a map with type_field and types, got " +
                             detail::describe(field.value));
    return;
  }
  detail::readObject(context, field, [&](ObjectReader& r) {
    r.scalar("type_field", schema.type_field, detail::jsonPointer(), Need::Required);
    r.object("types", Need::Required, [&](ObjectReader& types) {
      types.forEach([&](const Field& type) {
        if (auto file = schemaFile(context, type, base_dir)) schema.types[type.name] = *file;
      });
      if (types.isMap() && types.size() == 0) {
        context.error(types.self(), "expected at least one entry (event type: schema file)");
      }
    });
    r.scalar("unknown_type", schema.unknown_type,
             detail::oneOf<SchemaSpec::UnknownType>({{"error", SchemaSpec::UnknownType::Error},
                                                     {"pass", SchemaSpec::UnknownType::Pass}}));
  });
}

void readRetry(ObjectReader& r, RetrySpec& retry) {
  size_t errors_before = r.context().diagnostics().count();
  bool initial_given = r.scalar("initial", retry.initial, detail::durationAtLeast(Duration(1)));
  r.scalar("max", retry.max, detail::durationAtLeast(Duration(1)));
  r.scalar("multiplier", retry.multiplier,
           detail::numberIn(1.0, std::numeric_limits<double>::infinity()));
  r.scalar("jitter", retry.jitter, detail::numberIn(0.0, 1.0));
  if (r.context().diagnostics().count() == errors_before && retry.initial > retry.max) {
    // One of the two may be a default; point at the one the user wrote.
    r.error(initial_given ? "initial" : "max", "initial (" + detail::formatDuration(retry.initial) +
                                                   ") is greater than max (" +
                                                   detail::formatDuration(retry.max) + ")");
  }
}

// ordering, concurrency, max_pending, revoke_timeout: how one partition's messages run.
void readOrdering(ObjectReader& r, PipelineSpec& p) {
  const size_t errors_before = r.context().diagnostics().count();
  r.scalar(
      "ordering", p.ordering,
      detail::oneOf<Ordering>(
          {{"key", Ordering::Key}, {"partition", Ordering::Partition}, {"none", Ordering::None}}));
  bool concurrency_given =
      r.scalar("concurrency", p.concurrency, detail::integerIn<uint32_t>(1, 100'000));
  bool max_pending_given =
      r.scalar("max_pending", p.max_pending, detail::integerIn<uint32_t>(1, 10'000'000));
  r.scalar("revoke_timeout", p.revoke_timeout, detail::durationAtLeast(Duration(0)));
  if (r.context().diagnostics().count() != errors_before) return;
  if (p.ordering == Ordering::Partition) {
    if (concurrency_given && p.concurrency != 1) {
      r.error("concurrency",
              "ordering: partition runs one message at a time per partition; "
              "use ordering: key for concurrency " +
                  std::to_string(p.concurrency));
      return;
    }
    p.concurrency = 1;
  }
  if (p.max_pending < p.concurrency) {
    if (max_pending_given && !concurrency_given) {
      p.concurrency = p.max_pending;  // the default concurrency, bounded by what is held
    } else if (max_pending_given) {
      r.error("max_pending", "max_pending (" + std::to_string(p.max_pending) +
                                 ") must be at least concurrency (" +
                                 std::to_string(p.concurrency) + ")");
    } else {
      p.max_pending = p.concurrency;
    }
  }
}

void readPipeline(ObjectReader& r, const PipelineContext& pc, PipelineSpec& p) {
  Context& context = r.context();
  if (r.scalar("name", p.name, detail::identifier(), Need::Required)) {
    auto [first, inserted] = pc.names->emplace(p.name, context.diagnostics().file());
    if (!inserted) {
      r.error("name", "duplicate pipeline name " + detail::quote(p.name) + " (also defined in " +
                          first->second + ")");
    }
  }
  r.object("input", Need::Required, [&](ObjectReader& in) {
    in.scalar("topic", p.input.topic, detail::nonEmptyString(), Need::Required);
    in.scalar("group", p.input.group, detail::nonEmptyString(), Need::Required);
    Duration retention{};
    if (in.scalar("retention", retention, detail::durationAtLeast(Duration(1)))) {
      p.input.retention = retention;
    }
  });
  r.scalar("key", p.key_pointer, detail::jsonPointer(), Need::Required);
  readOrdering(r, p);
  if (std::optional<Field> schema = r.field("schema")) {
    readSchema(context, *schema, pc.base_dir, p.schema);
  }
  r.scalar("schema_evolution", p.schema_evolution,
           detail::oneOf<PipelineSpec::SchemaEvolution>(
               {{"growth_only", PipelineSpec::SchemaEvolution::GrowthOnly},
                {"any", PipelineSpec::SchemaEvolution::Any}}));
  r.object("dedup", Need::Optional, [&](ObjectReader& d) {
    DedupSpec& dedup = p.dedup.emplace();
    d.scalar("id", dedup.id_pointer, detail::jsonPointer(), Need::Required);
    // A reference to a key of `stores`, not a value: no store_file.
    Parser<std::string> store_name = detail::anyString();
    store_name.from_file = false;
    if (d.scalar("store", dedup.store, store_name) && !dedup.store.empty() &&
        pc.stores != nullptr && !pc.stores->contains(dedup.store)) {
      std::vector<std::string> names;
      for (const auto& [name, store] : *pc.stores) names.push_back(name);
      std::string message = "unknown store " + detail::quote(dedup.store);
      if (auto close = detail::suggest(dedup.store, names)) {
        message += " (did you mean \"" + *close + "\"?)";
      } else {
        message += " (stores are defined under stores: in kpipe.yaml)";
      }
      d.error("store", std::move(message));
    }
    d.scalar("on_duplicate", dedup.on_duplicate,
             detail::oneOf<DedupSpec::OnDuplicate>({{"audit", DedupSpec::OnDuplicate::Audit},
                                                    {"drop", DedupSpec::OnDuplicate::Drop}}));
  });
  r.object("output", Need::Required, [&](ObjectReader& o) {
    bool http = o.has("http");
    if (o.scalar("topic", p.output.topic, detail::nonEmptyString(),
                 http ? Need::Optional : Need::Required) &&
        http) {
      o.error("http", "output goes to a topic or to http, not both");
    }
    if (!o.scalar("key", p.output.key_pointer, detail::jsonPointer())) {
      p.output.key_pointer = p.key_pointer;
    }
    o.scalar("partitioner", p.output.partitioner,
             detail::oneOf<std::string>({{"murmur2_random", "murmur2_random"},
                                         {"murmur2", "murmur2"},
                                         {"consistent_random", "consistent_random"},
                                         {"consistent", "consistent"},
                                         {"fnv1a_random", "fnv1a_random"},
                                         {"fnv1a", "fnv1a"},
                                         {"random", "random"}}));
    o.object("http", Need::Optional,
             [&](ObjectReader& h) { readHttpSink(h, pc.base_dir, p.output.http.emplace()); });
  });
  r.object("errors", Need::Optional, [&](ObjectReader& e) {
    e.scalar("topic", p.errors.topic, detail::nonEmptyString());
    e.scalar("audit_topic", p.errors.audit_topic, detail::nonEmptyString());
    e.object("retry", Need::Optional,
             [&](ObjectReader& retry) { readRetry(retry, p.errors.retry); });
    e.scalar("max_attempts", p.errors.max_attempts, detail::integerIn<uint32_t>(0));
  });
  // nonEmptyString never yields "", so empty means "not given".
  if (p.errors.topic.empty()) p.errors.topic = p.input.topic + ".errors";
  if (p.errors.audit_topic.empty()) p.errors.audit_topic = p.input.topic + ".audit";
  r.scalar("max_message_bytes", p.max_message_bytes, detail::sizeAtLeast(1));
}

std::optional<PipelineSpec> loadPipeline(const PipelineFile& file, const PipelineContext& pc,
                                         const EnvLookup& env, Diagnostics& diagnostics) {
  std::optional<YAML::Node> root =
      parseYamlFile(file.path, diagnostics, kMaxConfigFileBytes, "a config file");
  if (!root) return std::nullopt;
  if (root->IsNull()) {
    diagnostics.error(YAML::Mark(), "",
                      "file is empty; a pipeline needs at least name, input, key and output");
    return std::nullopt;
  }
  if (!root->IsMap()) {
    diagnostics.error(root->Mark(), "",
                      "expected a map (name, input, key, output, ...) at the top level, got " +
                          detail::describe(*root));
    return std::nullopt;
  }
  Context context(diagnostics, env, pc.base_dir);
  PipelineSpec pipeline;
  pipeline.where = SourceLocation{file.display, 1, 1};
  detail::readObject(context, documentRoot(*root),
                     [&](ObjectReader& r) { readPipeline(r, pc, pipeline); });
  pipeline.fingerprint = YAML::Dump(*root) + context.secretDigests(0);
  for (const auto& secret : context.secretFiles()) pc.secret_files->push_back(secret.path);
  return pipeline;
}

void appendErrors(Diagnostics& diagnostics, std::vector<ConfigError>& out) {
  std::vector<ConfigError> errors = diagnostics.take();
  out.insert(out.end(), std::make_move_iterator(errors.begin()),
             std::make_move_iterator(errors.end()));
}

void load(const fs::path& file, const EnvLookup& env, LoadResult& result) {
  Config config;
  std::error_code ec;
  config.file = fs::absolute(file, ec).lexically_normal();
  config.base_dir = config.file.parent_path();
  config.pipelines_dir = config.base_dir / "pipelines";

  Diagnostics main_diagnostics(file.string());
  MainResult main;
  if (std::optional<YAML::Node> root =
          parseYamlFile(file, main_diagnostics, kMaxConfigFileBytes, "a config file")) {
    if (root->IsMap() || root->IsNull()) {
      Context context(main_diagnostics, env, config.base_dir);
      main = readMain(context, *root, file, config);
      for (const auto& secret : context.secretFiles()) config.secret_files.push_back(secret.path);
    } else {
      main_diagnostics.error(root->Mark(), "",
                             "expected a map (kafka, http, pipelines, stores, log, shutdown, "
                             "reload) at the top level, got " +
                                 detail::describe(*root));
    }
  }
  appendErrors(main_diagnostics, result.errors);

  // Pipeline files are read even when kpipe.yaml has errors, so one run shows everything; only
  // an unknown pipelines directory (kpipe.yaml unparseable, or the key wrong) stops that.
  std::map<std::string, std::string> names;
  PipelineContext pc{config.base_dir, main.stores_known ? &config.stores : nullptr, &names,
                     &config.secret_files};
  for (const PipelineFile& pipeline_file :
       main.pipeline_files.value_or(std::vector<PipelineFile>{})) {
    Diagnostics diagnostics(pipeline_file.display);
    std::optional<PipelineSpec> pipeline = loadPipeline(pipeline_file, pc, env, diagnostics);
    if (pipeline) config.pipelines.push_back(std::move(*pipeline));
    appendErrors(diagnostics, result.errors);
  }

  if (result.errors.empty()) result.config = std::move(config);
}

}  // namespace

LoadResult loadConfig(const fs::path& file, const EnvLookup& env) {
  LoadResult result;
  try {
    load(file, env, result);
  } catch (const std::exception& e) {
    // yaml-cpp throws on misuse and std:: on exhaustion; neither may take the caller down, and
    // neither may leave a half-read config behind.
    result.config.reset();
    result.errors.push_back(ConfigError{SourceLocation{file.string(), 0, 0}, "",
                                        std::string("internal error: ") + e.what()});
  }
  return result;
}

}  // namespace kpipe::config
