#pragma once
// Typed configuration: what kpipe.yaml and the pipeline files mean once loaded and checked.
// Plain structs, no behaviour; config/loader.h builds them and reports every error with file:line.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kpipe::config {

using Duration = std::chrono::milliseconds;

// Where a value came from, for messages that point the user at the right line.
struct SourceLocation {
  std::string file;
  int line = 0;             // 1-based; 0 when unknown
  int column = 0;           // 1-based
  std::string str() const;  // "file:line:column"
};

struct EmbeddedBrokerSpec {
  int brokers = 1;
  int default_partitions = 4;  // for topics the pipelines name and that do not exist yet
};

struct KafkaSpec {
  // "embedded" starts librdkafka's mock cluster in-process (dev/demo/test only: not durable).
  std::string bootstrap = "embedded";
  bool embedded() const { return bootstrap == "embedded"; }
  EmbeddedBrokerSpec embedded_broker;
  // Passed to every librdkafka client as-is (security.protocol, ssl.*, sasl.*, tuning).
  std::map<std::string, std::string> properties;
  // Applied after `properties`, to consumers or producers only (e.g. session.timeout.ms).
  std::map<std::string, std::string> consumer_properties;
  std::map<std::string, std::string> producer_properties;
  // Names of the properties (of any of the three maps) whose value came from a NAME_file: they
  // are masked wherever properties are shown (config/redact.h), as are secret names.
  std::set<std::string> secret_properties;
};

struct HttpSpec {
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 9464;
  bool enabled = true;
};

enum class StoreType { Memory, Redis, Lmdb };
// "memory", "redis", "lmdb": as kpipe.yaml spells the type (config/values.cpp).
const char* storeTypeName(StoreType type);

// A dedup store (dedup/store.h), named in kpipe.yaml and used by pipelines' dedup.store.
struct StoreSpec {
  std::string name;
  std::string fingerprint;  // its YAML, as PipelineSpec::fingerprint
  StoreType type = StoreType::Memory;
  Duration ttl = std::chrono::hours(24 * 7);  // how long a processed id is remembered
  // How long a reservation lives without a confirm (a crash between effect and confirm). It
  // must outlast one attempt at the effect (message.timeout.ms, the HTTP sink's timeout).
  Duration reservation_ttl = std::chrono::minutes(5);
  uint64_t max_entries = 10'000'000;  // memory: ids held at most (oldest go first)
  // redis: from url, redis://[[user]:password@]host[:port][/db]
  struct Redis {
    std::string host;
    uint16_t port = 6379;
    int db = 0;
    std::string username;
    std::string password;
    std::string display;  // the url with the password masked, for logs and status
  } redis;
  Duration timeout = std::chrono::seconds(2);  // redis: connect, and one batch's round trip
  std::string prefix = "kpipe:dedup:";         // redis: key prefix, before pipeline:id
  std::filesystem::path path;                  // lmdb: directory of the database
  uint64_t map_size = 1ULL << 30;              // lmdb: the most the database may grow to
  SourceLocation where;
};

enum class LogFormat { Json, Text };
enum class LogLevel { Debug, Info, Warn, Error };

struct LogSpec {
  LogFormat format = LogFormat::Text;
  LogLevel level = LogLevel::Info;
};

struct InputSpec {
  std::string topic;
  std::string group;
  // The topic's retention, for brokers that do not answer DescribeConfigs (the embedded one);
  // what the broker says wins.
  std::optional<Duration> retention;
};

// A JSON Schema for the whole pipeline, or one per event type named by a field.
struct SchemaSpec {
  std::optional<std::filesystem::path> file;  // single-schema form
  std::string type_field;                     // JSON pointer, per-type form
  std::map<std::string, std::filesystem::path> types;
  enum class UnknownType { Error, Pass } unknown_type = UnknownType::Error;
  bool present() const { return file.has_value() || !types.empty(); }
};

struct DedupSpec {
  std::string id_pointer;  // JSON pointer to the message id
  std::string store;       // name of a store in kpipe.yaml; "" = a private memory store
  enum class OnDuplicate { Audit, Drop } on_duplicate = OnDuplicate::Audit;
};

// An HTTP endpoint that receives each output message (sinks/http_sink.h).
struct HttpSinkSpec {
  std::string url;  // http://host[:port]/path or https://... (TLS, certificate verified)
  std::string method = "POST";
  std::map<std::string, std::string> headers;   // added to every request (e.g. Authorization)
  Duration timeout = std::chrono::seconds(10);  // one request: connect, send, response
  uint32_t connections = 64;                    // keep-alive connections at most
  // Statuses that mean "try again later" (blocking) besides every 5xx; any other non-2xx
  // status is a permanent rejection of that message (non-blocking: error topic).
  std::vector<int> retry_statuses = {408, 425, 429};
  std::filesystem::path ca_file;  // https: CA bundle to verify with; empty = system store
  // tls.verify: false accepts any certificate and host name (a warning is logged each time the
  // sink is built): for test endpoints only.
  bool tls_verify = true;
  // Shown masked (config/redact.h): headers read from NAME_file, and a url read from url_file.
  std::set<std::string> secret_headers;
  bool url_secret = false;
};

struct OutputSpec {
  std::optional<HttpSinkSpec> http;  // set: output goes to this endpoint, not to `topic`
  std::string topic;
  std::string key_pointer;  // defaults to the pipeline key
  // librdkafka partitioner of output records. murmur2_random places keys as the Java client
  // does; librdkafka's own default (consistent_random, CRC32) does not (DESIGN.md §1.1).
  std::string partitioner = "murmur2_random";
};

// What may run concurrently within one input partition (DESIGN.md §1.1).
enum class Ordering {
  Key,        // same key: one at a time, in offset order; different keys concurrently
  Partition,  // one message at a time per partition
  None,       // no order: up to `concurrency` messages at a time
};

struct RetrySpec {
  Duration initial = std::chrono::milliseconds(100);
  Duration max = std::chrono::seconds(30);
  double multiplier = 2.0;
  double jitter = 0.2;
};

struct ErrorsSpec {
  std::string topic;        // non-blocking failures; default "<input.topic>.errors"
  std::string audit_topic;  // duplicates; default "<input.topic>.audit"
  RetrySpec retry;
  // Attempts at the output before a message goes to the error topic with class "exhausted";
  // 0 = retry forever (the default: a down dependency must not turn into skipped messages).
  // Writes to the error and audit topics are always retried forever.
  uint32_t max_attempts = 0;
};

struct PipelineSpec {
  std::string name;
  SourceLocation where;  // the file that defined it
  // The pipeline file's YAML with comments and layout dropped: a reload compares it to tell
  // whether the pipeline changed.
  std::string fingerprint;
  InputSpec input;
  std::string key_pointer;  // JSON pointer of the ordering key
  Ordering ordering = Ordering::Key;
  // Keys (ordering: key) or messages (ordering: none) in flight per partition; 1 for partition.
  // By Little's law a partition's throughput is at most concurrency / latency: at 512 and the
  // producer's 5-10 ms (linger.ms 5, acks all), 50k-100k msg/s. 64 capped the benchmark's
  // partitions at 6k-13k msg/s (docs/BENCHMARKS.md).
  uint32_t concurrency = 512;
  // Messages of one partition held in memory (in flight + waiting for their key or a slot).
  // At this bound the partition pauses; it resumes once half of them are done. Twice the
  // concurrency: room for the messages that wait behind a busy key, and few enough to still be
  // in cache when they start. In ../shared/bench (docs/BENCHMARKS.md), 4096 cost 14% more CPU
  // and 11% less throughput over 12 partitions than 1024, the same on one partition; 512 was
  // cheaper still over 12 but 26% slower on one, where keys wait behind each other.
  uint32_t max_pending = 1024;
  // On a revoke, how long in-flight work may take to finish (and be committed by this member)
  // before the partitions are released anyway.
  Duration revoke_timeout = std::chrono::seconds(10);
  SchemaSpec schema;
  // How `kpipe check --against` treats a changed schema: growth_only refuses a change that
  // rejects data the old schema accepted (schema/compat.h); any allows every change.
  enum class SchemaEvolution { GrowthOnly, Any } schema_evolution = SchemaEvolution::GrowthOnly;
  std::optional<DedupSpec> dedup;
  OutputSpec output;
  ErrorsSpec errors;
  // librdkafka's default message.max.bytes: a larger value could not be written out again.
  uint64_t max_message_bytes = 1'000'000;
};

struct Config {
  std::filesystem::path file;  // kpipe.yaml
  std::filesystem::path base_dir;
  KafkaSpec kafka;
  std::string kafka_fingerprint;  // the kafka section's YAML, as PipelineSpec::fingerprint
  HttpSpec http;
  std::filesystem::path pipelines_dir;
  std::map<std::string, StoreSpec> stores;
  LogSpec log;
  std::vector<PipelineSpec> pipelines;
  // shutdown.drain_timeout: how long a stop (or a reload's restart of a pipeline) waits for
  // in-flight messages before closing anyway (they are redelivered).
  Duration drain_timeout = std::chrono::seconds(30);
  // reload: {watch, debounce}: reload when the config's files change, once they have been
  // quiet for `debounce`.
  bool reload_watch = true;
  Duration reload_debounce = std::chrono::milliseconds(200);
  // The files read for x_file secrets (absolute): a reload should also follow their changes.
  std::vector<std::filesystem::path> secret_files;
};

}  // namespace kpipe::config
