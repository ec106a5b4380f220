// loadConfig end to end: files in a temp directory, every field, every kind of error with its
// exact file:line:column.

#include "daemon/config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace kpipe::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr const char* kMinimalPipeline = R"(
name: users
input: {topic: user-events, group: g1}
key: /user_id
output: {topic: users}
)";

// A config directory of its own per test: kpipe.yaml, pipelines/, schemas/.
class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("kpipe_config_" + std::string(test->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "pipelines");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `text` under the test directory. One leading newline is dropped, so that
  // R"(\nname: a)" starts with "name: a" on line 1.
  void write(const std::string& relative, std::string_view text) {
    if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
    fs::create_directories((dir_ / relative).parent_path());
    std::ofstream(dir_ / relative, std::ios::binary) << text;
  }
  std::string path(const std::string& relative) const { return (dir_ / relative).string(); }

  LoadResult load(std::map<std::string, std::string> env = {}) {
    return loadConfig(dir_ / "kpipe.yaml",
                      [env = std::move(env)](std::string_view name) -> std::optional<std::string> {
                        auto it = env.find(std::string(name));
                        if (it == env.end()) return std::nullopt;
                        return it->second;
                      });
  }

  // Every error as "file:line:column: path: message", with the test directory shortened to "@/".
  std::vector<std::string> errors(const LoadResult& result) const {
    std::vector<std::string> out;
    for (const ConfigError& error : result.errors) {
      std::string text = error.str();
      std::string prefix = dir_.string() + "/";
      for (size_t at = text.find(prefix); at != text.npos; at = text.find(prefix)) {
        text.replace(at, prefix.size(), "@/");
      }
      out.push_back(text);
    }
    return out;
  }

  // Loads a config whose only pipeline is `pipeline`; returns its errors.
  std::vector<std::string> pipelineErrors(std::string_view pipeline) {
    write("kpipe.yaml", "");
    write("pipelines/p.yaml", pipeline);
    LoadResult result = load();
    EXPECT_FALSE(result.ok());
    return errors(result);
  }

  fs::path dir_;
};

TEST_F(LoaderTest, ReadsEveryField) {
  // given
  write("kpipe.yaml", R"(
kafka:
  bootstrap: ${KPIPE_BOOTSTRAP:-embedded}
  embedded: {brokers: 3, partitions: 8}
  properties: {security.protocol: SASL_SSL, sasl.password: "${KAFKA_PASSWORD}", linger.ms: 5}
http: {listen: 0.0.0.0:9100, enabled: false}
pipelines: flows/
stores:
  ids: {type: memory, ttl: 2d, max_entries: 5000}
log: {format: json, level: debug}
)");
  write("flows/user-events.yaml", R"(
name: user-events
input: {topic: user-events, group: user-event-processor, retention: 3d}
key: /user_id
schema: schemas/user.json
dedup: {id: /msg_id, store: ids, on_duplicate: drop}
output: {topic: users, key: /account_id}
errors:
  topic: ue.errors
  audit_topic: ue.audit
  retry: {initial: 250ms, max: 1m, multiplier: 1.5, jitter: 0}
max_message_bytes: 64KiB
)");
  write("flows/orders.yml", R"(
name: orders
input: {topic: orders, group: order-processor}
key: /order_id
schema:
  type_field: /type
  types: {order.created: schemas/order.created.json, order.paid: ./schemas/../schemas/paid.json}
  unknown_type: pass
output: {topic: orders-out}
)");
  write("schemas/user.json", "{}");
  write("schemas/order.created.json", "{}");
  write("schemas/paid.json", "{}");

  // when
  LoadResult result = load({{"KPIPE_BOOTSTRAP", "broker-1:9092"}, {"KAFKA_PASSWORD", "s3cret"}});

  // then
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  const Config& config = *result.config;
  EXPECT_EQ(config.file, dir_ / "kpipe.yaml");
  EXPECT_EQ(config.base_dir, dir_);
  EXPECT_EQ(config.pipelines_dir, dir_ / "flows");
  EXPECT_EQ(config.kafka.bootstrap, "broker-1:9092");
  EXPECT_FALSE(config.kafka.embedded());
  EXPECT_EQ(config.kafka.embedded_broker.brokers, 3);
  EXPECT_EQ(config.kafka.embedded_broker.default_partitions, 8);
  EXPECT_EQ(
      config.kafka.properties,
      (std::map<std::string, std::string>{
          {"linger.ms", "5"}, {"sasl.password", "s3cret"}, {"security.protocol", "SASL_SSL"}}));
  EXPECT_EQ(config.http.listen_address, "0.0.0.0");
  EXPECT_EQ(config.http.listen_port, 9100);
  EXPECT_FALSE(config.http.enabled);
  ASSERT_EQ(config.stores.size(), 1u);
  const StoreSpec& store = config.stores.at("ids");
  EXPECT_EQ(store.name, "ids");
  EXPECT_EQ(store.type, StoreType::Memory);
  EXPECT_EQ(store.ttl, 48h);
  EXPECT_EQ(store.max_entries, 5000u);
  EXPECT_EQ(store.where.str(), path("kpipe.yaml") + ":8:3");
  EXPECT_EQ(config.log.format, LogFormat::Json);
  EXPECT_EQ(config.log.level, LogLevel::Debug);

  // Sorted by file name: orders.yml before user-events.yaml.
  ASSERT_EQ(config.pipelines.size(), 2u);
  const PipelineSpec& orders = config.pipelines[0];
  EXPECT_EQ(orders.name, "orders");
  EXPECT_EQ(orders.where.str(), path("flows/orders.yml") + ":1:1");
  EXPECT_FALSE(orders.schema.file.has_value());
  EXPECT_FALSE(orders.input.retention.has_value());  // the broker's retention.ms, read at run time
  EXPECT_EQ(orders.schema.type_field, "/type");
  EXPECT_EQ(orders.schema.types,
            (std::map<std::string, fs::path>{{"order.created", dir_ / "schemas/order.created.json"},
                                             {"order.paid", dir_ / "schemas/paid.json"}}));
  EXPECT_EQ(orders.schema.unknown_type, SchemaSpec::UnknownType::Pass);

  const PipelineSpec& users = config.pipelines[1];
  EXPECT_EQ(users.name, "user-events");
  EXPECT_EQ(users.where.str(), path("flows/user-events.yaml") + ":1:1");
  EXPECT_EQ(users.input.topic, "user-events");
  EXPECT_EQ(users.input.group, "user-event-processor");
  EXPECT_EQ(users.input.retention, std::optional<Duration>(72h));
  EXPECT_EQ(users.key_pointer, "/user_id");
  EXPECT_EQ(users.schema.file, dir_ / "schemas/user.json");
  ASSERT_TRUE(users.dedup.has_value());
  EXPECT_EQ(users.dedup->id_pointer, "/msg_id");
  EXPECT_EQ(users.dedup->store, "ids");
  EXPECT_EQ(users.dedup->on_duplicate, DedupSpec::OnDuplicate::Drop);
  EXPECT_EQ(users.output.topic, "users");
  EXPECT_EQ(users.output.key_pointer, "/account_id");
  EXPECT_EQ(users.errors.topic, "ue.errors");
  EXPECT_EQ(users.errors.audit_topic, "ue.audit");
  EXPECT_EQ(users.errors.retry.initial, 250ms);
  EXPECT_EQ(users.errors.retry.max, 1min);
  EXPECT_EQ(users.errors.retry.multiplier, 1.5);
  EXPECT_EQ(users.errors.retry.jitter, 0.0);
  EXPECT_EQ(users.max_message_bytes, 64u * 1024);
}

TEST_F(LoaderTest, AppliesDefaults) {
  // given: an empty kpipe.yaml and a pipeline with only the required keys
  write("kpipe.yaml", "# nothing to change\n");
  write("pipelines/users.yaml", kMinimalPipeline);

  // when
  LoadResult result = load();

  // then
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  const Config& config = *result.config;
  EXPECT_TRUE(config.kafka.embedded());
  EXPECT_EQ(config.kafka.embedded_broker.brokers, 1);
  EXPECT_EQ(config.kafka.embedded_broker.default_partitions, 4);
  EXPECT_EQ(config.http.listen_address, "127.0.0.1");
  EXPECT_EQ(config.http.listen_port, 9464);
  EXPECT_TRUE(config.http.enabled);
  EXPECT_EQ(config.pipelines_dir, dir_ / "pipelines");
  EXPECT_THAT(config.stores, IsEmpty());
  EXPECT_EQ(config.log.format, LogFormat::Text);
  EXPECT_EQ(config.log.level, LogLevel::Info);
  ASSERT_EQ(config.pipelines.size(), 1u);
  const PipelineSpec& p = config.pipelines[0];
  EXPECT_FALSE(p.schema.present());
  EXPECT_FALSE(p.dedup.has_value());
  EXPECT_EQ(p.output.key_pointer, "/user_id");
  EXPECT_EQ(p.errors.topic, "user-events.errors");
  EXPECT_EQ(p.errors.audit_topic, "user-events.audit");
  EXPECT_EQ(p.errors.retry.initial, 100ms);
  EXPECT_EQ(p.errors.retry.max, 30s);
  EXPECT_EQ(p.errors.retry.multiplier, 2.0);
  EXPECT_EQ(p.errors.retry.jitter, 0.2);
  EXPECT_EQ(p.max_message_bytes, 1000000u);
  EXPECT_EQ(p.ordering, Ordering::Key);
  EXPECT_EQ(p.concurrency, 512u);
  EXPECT_EQ(p.max_pending, 1024u);
  EXPECT_EQ(p.revoke_timeout, 10s);
  EXPECT_EQ(p.output.partitioner, "murmur2_random");
  EXPECT_EQ(p.schema_evolution, PipelineSpec::SchemaEvolution::GrowthOnly);
}

TEST_F(LoaderTest, EmptySectionsAndPrivateDedupStoreAreFine) {
  write("kpipe.yaml", R"(
kafka:
stores:
)");
  write("pipelines/users.yaml", std::string(kMinimalPipeline) + "dedup: {id: /id, store: \"\"}\n");

  LoadResult result = load();

  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  EXPECT_EQ(result.config->pipelines[0].dedup->store, "");
  EXPECT_EQ(result.config->pipelines[0].dedup->on_duplicate, DedupSpec::OnDuplicate::Audit);
}

TEST_F(LoaderTest, SchemaPathsResolveAgainstTheConfigDirectoryNotThePipelineFile) {
  // given: the schema exists relative to kpipe.yaml only, not relative to the pipeline file
  write("kpipe.yaml", "pipelines: pipelines/nested/\n");
  write("pipelines/nested/users.yaml", std::string(kMinimalPipeline) + "schema: schemas/u.json\n");
  write("schemas/u.json", "{}");

  // when
  LoadResult result = load();

  // then
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  EXPECT_EQ(result.config->pipelines_dir, dir_ / "pipelines/nested");
  EXPECT_EQ(result.config->pipelines[0].schema.file, dir_ / "schemas/u.json");
}

TEST_F(LoaderTest, ReadsYamlAndYmlSortedAndSkipsTestFilesAndDotfiles) {
  write("kpipe.yaml", "");
  write("pipelines/b.yml", "name: b\ninput: {topic: t, group: g}\nkey: /k\noutput: {topic: o}\n");
  write("pipelines/a.yaml", "name: a\ninput: {topic: t, group: g}\nkey: /k\noutput: {topic: o}\n");
  write("pipelines/a.test.yaml", "not: a pipeline\n");
  write("pipelines/b.test.yml", "not: a pipeline\n");
  write("pipelines/.#a.yaml", "not: a pipeline\n");
  write("pipelines/notes.txt", "not: a pipeline\n");

  LoadResult result = load();

  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  ASSERT_EQ(result.config->pipelines.size(), 2u);
  EXPECT_EQ(result.config->pipelines[0].name, "a");
  EXPECT_EQ(result.config->pipelines[1].name, "b");
}

TEST_F(LoaderTest, EmptyPipelinesDirectoryIsValid) {
  write("kpipe.yaml", "");
  LoadResult result = load();
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(result.config->pipelines, IsEmpty());
}

// --- unknown, duplicate, missing keys and wrong types -------------------------------------------

TEST_F(LoaderTest, UnknownKeySuggestsTheClosestOne) {
  EXPECT_THAT(pipelineErrors(R"(
name: a
input: {topc: t, group: g}
key: /k
output: {topic: o}
)"),
              ElementsAre("@/pipelines/p.yaml:2:8: input.topic: missing required key \"topic\"",
                          "@/pipelines/p.yaml:2:9: input.topc: unknown key \"topc\" (did you mean "
                          "\"topic\"?)"));
}

TEST_F(LoaderTest, UnknownKeyWithoutCloseMatchListsTheAllowedKeys) {
  write("kpipe.yaml", R"(
http: {listen: 127.0.0.1:80, tls: true}
)");
  EXPECT_THAT(errors(load()), ElementsAre("@/kpipe.yaml:1:30: http.tls: unknown key \"tls\" "
                                          "(expected one of: listen, enabled)"));
}

TEST_F(LoaderTest, UnknownTopLevelKeyInKpipeYaml) {
  write("kpipe.yaml", "kafka: {}\nstore: {}\n");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/kpipe.yaml:2:1: store: unknown key \"store\" (did you mean "
                          "\"stores\"?)"));
}

TEST_F(LoaderTest, WrongTypeIsReportedAtTheValue) {
  EXPECT_THAT(pipelineErrors(R"(
name: a
input: {topic: t, group: g}
key: /k
output: {topic: {x: 1}}
)"),
              ElementsAre("@/pipelines/p.yaml:4:17: output.topic: expected a string, got a map"));
}

TEST_F(LoaderTest, SectionThatIsNotAMap) {
  write("kpipe.yaml", R"(
kafka:
  bootstrap: localhost:9092
  properties: [a, b]
http: 127.0.0.1:9464
)");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/kpipe.yaml:3:15: kafka.properties: expected a map, got a list",
                          "@/kpipe.yaml:4:7: http: expected a map, got the string "
                          "\"127.0.0.1:9464\""));
}

TEST_F(LoaderTest, MissingRequiredKeyIsReportedAtTheParentMap) {
  EXPECT_THAT(pipelineErrors(R"(
name: a
input:
  topic: t
output: {topic: o}
)"),
              ElementsAre("@/pipelines/p.yaml:1:1: key: missing required key \"key\"",
                          "@/pipelines/p.yaml:3:3: input.group: missing required key \"group\""));
}

TEST_F(LoaderTest, DuplicateKeyNamesTheFirstOccurrence) {
  EXPECT_THAT(pipelineErrors(R"(
name: a
input:
  topic: t
  group: g
  topic: u
key: /k
output: {topic: o}
)"),
              ElementsAre("@/pipelines/p.yaml:5:3: input.topic: duplicate key \"topic\" (first at "
                          "line 3)"));
}

TEST_F(LoaderTest, EmptyValueForRequiredScalarPointsAtTheKey) {
  EXPECT_THAT(pipelineErrors(R"(
name:
input: {topic: t, group: ""}
key: /k
output: {topic: o}
)"),
              ElementsAre("@/pipelines/p.yaml:1:1: name: expected a name, got an empty value",
                          "@/pipelines/p.yaml:2:26: input.group: must not be empty"));
}

// --- bad values ---------------------------------------------------------------------------------

TEST_F(LoaderTest, BadDuration) {
  write("kpipe.yaml", R"(
stores:
  ids: {type: memory, ttl: 7x}
)");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/kpipe.yaml:2:28: stores.ids.ttl: \"7x\" is not a duration (use e.g. "
                          "250ms, 30s, 5m, 2h, 7d)"));
}

TEST_F(LoaderTest, BadSizeAndIntegers) {
  write("kpipe.yaml", R"(
kafka:
  embedded: {brokers: 0, partitions: many}
stores:
  ids: {type: memory, max_entries: -5}
)");
  write("pipelines/p.yaml", std::string(kMinimalPipeline) + "max_message_bytes: 1.5MiB\n");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/kpipe.yaml:2:23: kafka.embedded.brokers: \"0\" is out of range (must "
                          "be at least 1)",
                          "@/kpipe.yaml:2:38: kafka.embedded.partitions: \"many\" is not an "
                          "integer",
                          "@/kpipe.yaml:4:36: stores.ids.max_entries: \"-5\" is not an integer",
                          "@/pipelines/p.yaml:5:20: max_message_bytes: \"1.5MiB\" is not a size "
                          "(use e.g. 1048576, 512KiB, 1MiB, 1GiB)"));
}

TEST_F(LoaderTest, EnumValueSuggestsTheClosestChoice) {
  write("kpipe.yaml", "log: {format: jsn, level: verbose}\n");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/kpipe.yaml:1:15: log.format: \"jsn\" is not one of json, text (did "
                          "you mean \"json\"?)",
                          "@/kpipe.yaml:1:27: log.level: \"verbose\" is not one of debug, info, "
                          "warn, error"));
}

TEST_F(LoaderTest, HttpListenMustBeHostAndPort) {
  write("kpipe.yaml", "http: {listen: \"[::1]:9464\", enabled: yes}\n");
  EXPECT_THAT(errors(load()), ElementsAre("@/kpipe.yaml:1:39: http.enabled: \"yes\" is not a "
                                          "boolean (use true or false)"));

  write("kpipe.yaml", "http: {listen: \"[::1]:9464\"}\n");
  LoadResult ipv6 = load();
  ASSERT_TRUE(ipv6.ok());
  EXPECT_EQ(ipv6.config->http.listen_address, "::1");
  EXPECT_EQ(ipv6.config->http.listen_port, 9464);

  for (const char* listen : {"9464", ":9464", "localhost:70000", "localhost:", "::1:9464"}) {
    write("kpipe.yaml", std::string("http: {listen: \"") + listen + "\"}\n");
    EXPECT_THAT(errors(load()),
                ElementsAre(::testing::StartsWith("@/kpipe.yaml:1:16: http.listen: \"")))
        << listen;
  }
}

TEST_F(LoaderTest, JsonPointersAreChecked) {
  EXPECT_THAT(pipelineErrors(R"(
name: a
input: {topic: t, group: g}
key: user_id
dedup: {id: /a~2b}
output: {topic: o}
)"),
              ElementsAre("@/pipelines/p.yaml:3:6: key: \"user_id\" is not a JSON pointer (write "
                          "\"/user_id\")",
                          "@/pipelines/p.yaml:4:13: dedup.id: \"/a~2b\" is not a valid JSON "
                          "pointer: \"~\" must be followed by 0 or 1 (\"~0\" is \"~\", \"~1\" is "
                          "\"/\")"));
}

TEST_F(LoaderTest, InvalidPipelineName) {
  EXPECT_THAT(pipelineErrors(R"(
name: user events
input: {topic: t, group: g}
key: /k
output: {topic: o}
)"),
              ElementsAre("@/pipelines/p.yaml:1:7: name: \"user events\" is not a valid name (use "
                          "letters, digits, '.', '_' and '-')"));
}

TEST_F(LoaderTest, RetryRules) {
  EXPECT_THAT(pipelineErrors(R"(
name: a
input: {topic: t, group: g}
key: /k
output: {topic: o}
errors:
  retry: {initial: 0ms, multiplier: 0.5, jitter: 1.5}
)"),
              ElementsAre("@/pipelines/p.yaml:6:20: errors.retry.initial: \"0ms\" is too short "
                          "(must be at least 1ms)",
                          "@/pipelines/p.yaml:6:37: errors.retry.multiplier: \"0.5\" is out of "
                          "range (must be at least 1)",
                          "@/pipelines/p.yaml:6:50: errors.retry.jitter: \"1.5\" is out of range "
                          "(must be between 0 and 1)"));
}

TEST_F(LoaderTest, ReadsOrderingConcurrencyAndPartitioner) {
  write("kpipe.yaml", "");
  write("pipelines/p.yaml", R"(
name: a
input: {topic: t, group: g}
key: /k
ordering: none
concurrency: 8
max_pending: 100
revoke_timeout: 2s
output: {topic: o, partitioner: consistent_random}
)");
  LoadResult result = load();
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  const PipelineSpec& p = result.config->pipelines.at(0);
  EXPECT_EQ(p.ordering, Ordering::None);
  EXPECT_EQ(p.concurrency, 8u);
  EXPECT_EQ(p.max_pending, 100u);
  EXPECT_EQ(p.revoke_timeout, 2s);
  EXPECT_EQ(p.output.partitioner, "consistent_random");
}

TEST_F(LoaderTest, MaxPendingAloneBoundsTheDefaultConcurrency) {
  // max_pending below the default concurrency (512), concurrency not given: the pipeline runs
  // up to max_pending keys at a time instead of being refused (configs written when the
  // default was 64 keep working).
  write("kpipe.yaml", "");
  write("pipelines/p.yaml", R"(
name: a
input: {topic: t, group: g}
key: /k
max_pending: 100
output: {topic: o}
)");
  LoadResult result = load();
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  EXPECT_EQ(result.config->pipelines.at(0).concurrency, 100u);
  EXPECT_EQ(result.config->pipelines.at(0).max_pending, 100u);
}

TEST_F(LoaderTest, OrderingPartitionRunsOneAtATime) {
  write("kpipe.yaml", "");
  write("pipelines/p.yaml", R"(
name: a
input: {topic: t, group: g}
key: /k
ordering: partition
output: {topic: o}
)");
  LoadResult result = load();
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  EXPECT_EQ(result.config->pipelines.at(0).concurrency, 1u);
}

TEST_F(LoaderTest, OrderingRules) {
  EXPECT_THAT(pipelineErrors(R"(
name: a
input: {topic: t, group: g}
key: /k
ordering: partition
concurrency: 4
output: {topic: o, partitioner: murmur}
)"),
              ElementsAre("@/pipelines/p.yaml:5:14: concurrency: ordering: partition runs one "
                          "message at a time per partition; use ordering: key for concurrency 4",
                          "@/pipelines/p.yaml:6:33: output.partitioner: \"murmur\" is not one of "
                          "murmur2_random, murmur2, consistent_random, consistent, fnv1a_random, "
                          "fnv1a, random (did you mean \"murmur2\"?)"));
  EXPECT_THAT(pipelineErrors(R"(
name: a
input: {topic: t, group: g}
key: /k
ordering: keys
concurrency: 0
output: {topic: o}
)"),
              ElementsAre("@/pipelines/p.yaml:4:11: ordering: \"keys\" is not one of key, "
                          "partition, none (did you mean \"key\"?)",
                          "@/pipelines/p.yaml:5:14: concurrency: \"0\" is out of range (must be "
                          "between 1 and 100000)"));
  EXPECT_THAT(pipelineErrors(R"(
name: a
input: {topic: t, group: g}
key: /k
concurrency: 100
max_pending: 10
output: {topic: o}
)"),
              ElementsAre("@/pipelines/p.yaml:5:14: max_pending: max_pending (10) must be at "
                          "least concurrency (100)"));
}

TEST_F(LoaderTest, RetryInitialMustNotExceedMax) {
  // The default max (30s) counts too.
  EXPECT_THAT(pipelineErrors(R"(
name: a
input: {topic: t, group: g}
key: /k
output: {topic: o}
errors:
  retry:
    initial: 1m
)"),
              ElementsAre("@/pipelines/p.yaml:7:14: errors.retry.initial: initial (1m) is greater "
                          "than max (30s)"));
}

// --- stores, schema, output
// -----------------------------------------------------------------------

TEST_F(LoaderTest, RedisAndLmdbStores) {
  // given
  write("kpipe.yaml", R"(
stores:
  ids: {type: redis, url: "redis://app:s3cret@cache.local:6380/2", ttl: 7d, timeout: 500ms,
        reservation_ttl: 2m, prefix: "x:"}
  plain: {type: redis, url: "redis://[::1]"}
  local: {type: lmdb, path: state/dedup, map_size: 64MiB}
)");
  // when
  LoadResult result = load();
  // then
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  const StoreSpec& ids = result.config->stores.at("ids");
  EXPECT_EQ(ids.type, StoreType::Redis);
  EXPECT_EQ(ids.redis.host, "cache.local");
  EXPECT_EQ(ids.redis.port, 6380);
  EXPECT_EQ(ids.redis.db, 2);
  EXPECT_EQ(ids.redis.username, "app");
  EXPECT_EQ(ids.redis.password, "s3cret");
  EXPECT_EQ(ids.redis.display, "redis://app:***@cache.local:6380/2");  // for logs: no password
  EXPECT_EQ(ids.timeout, 500ms);
  EXPECT_EQ(ids.reservation_ttl, 2min);
  EXPECT_EQ(ids.prefix, "x:");
  const StoreSpec& plain = result.config->stores.at("plain");
  EXPECT_EQ(plain.redis.host, "::1");
  EXPECT_EQ(plain.redis.port, 6379);
  EXPECT_EQ(plain.redis.display, "redis://[::1]:6379/0");
  const StoreSpec& local = result.config->stores.at("local");
  EXPECT_EQ(local.type, StoreType::Lmdb);
  EXPECT_EQ(local.path, dir_ / "state" / "dedup");  // relative to kpipe.yaml
  EXPECT_EQ(local.map_size, 64u << 20);
}

TEST_F(LoaderTest, BadStores) {
  write("kpipe.yaml", R"(
stores:
  a: {type: redis, url: "http://cache:6379"}
  b: {type: redis, url: "redis://cache:99999"}
  c: {type: redis, url: "redis://cache/zero"}
  d: {type: redis}
  e: {type: lmdb, url: "redis://x"}
  f: {type: memory, path: /tmp/x}
  g: {type: cassandra}
  h: {ttl: 1d}
)");
  EXPECT_THAT(
      errors(load()),
      ElementsAre(
          "@/kpipe.yaml:2:25: stores.a.url: redis url: expected "
          "redis://[[user]:password@]host[:port][/db] (rediss:// and unix sockets are not "
          "supported)",
          "@/kpipe.yaml:3:25: stores.b.url: redis url: port \"99999\" is not a number from 1 to "
          "65535",
          "@/kpipe.yaml:4:25: stores.c.url: redis url: database \"zero\" is not a number "
          "(redis://host:port/0)",
          "@/kpipe.yaml:5:6: stores.d.url: missing required key \"url\"",
          "@/kpipe.yaml:6:6: stores.e.path: missing required key \"path\"",
          "@/kpipe.yaml:6:24: stores.e.url: url applies to redis stores, not lmdb",
          "@/kpipe.yaml:7:27: stores.f.path: path applies to lmdb stores, not memory",
          "@/kpipe.yaml:8:13: stores.g.type: unknown store type \"cassandra\" (use memory, redis "
          "or lmdb)",
          "@/kpipe.yaml:9:6: stores.h.type: missing required key \"type\""));
}

TEST_F(LoaderTest, DedupStoreMustBeDefined) {
  write("kpipe.yaml", "stores: {ids: {type: memory}}\n");
  write("pipelines/a.yaml", std::string(kMinimalPipeline) + "dedup: {id: /id, store: idz}\n");
  write("pipelines/b.yaml",
        "name: b\ninput: {topic: t, group: g}\nkey: /k\noutput: {topic: o}\n"
        "dedup: {id: /id, store: cache}\n");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/pipelines/a.yaml:5:25: dedup.store: unknown store \"idz\" (did you "
                          "mean \"ids\"?)",
                          "@/pipelines/b.yaml:5:25: dedup.store: unknown store \"cache\" (stores "
                          "are defined under stores: in kpipe.yaml)"));
}

TEST_F(LoaderTest, ReadsOutputHttpAndMaxAttempts) {
  write("kpipe.yaml", "");
  write("ca.pem", "not checked here");
  write("pipelines/p.yaml", R"(
name: a
input: {topic: t, group: g}
key: /k
output:
  http:
    url: https://api.example.com:8443/events?x=1
    method: PUT
    headers: {Authorization: "Bearer ${TOKEN}"}
    timeout: 2s
    connections: 8
    retry_statuses: [409, 429]
    ca_file: ca.pem
errors: {max_attempts: 5}
)");
  LoadResult result = load({{"TOKEN", "s3cret"}});
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  const PipelineSpec& p = result.config->pipelines.at(0);
  ASSERT_TRUE(p.output.http.has_value());
  const HttpSinkSpec& http = *p.output.http;
  EXPECT_EQ(http.url, "https://api.example.com:8443/events?x=1");
  EXPECT_EQ(http.method, "PUT");
  EXPECT_EQ(http.headers, (std::map<std::string, std::string>{{"Authorization", "Bearer s3cret"}}));
  EXPECT_EQ(http.timeout, 2s);
  EXPECT_EQ(http.connections, 8u);
  EXPECT_EQ(http.retry_statuses, (std::vector<int>{409, 429}));
  EXPECT_EQ(http.ca_file, dir_ / "ca.pem");
  EXPECT_TRUE(p.output.topic.empty());
  EXPECT_EQ(p.errors.max_attempts, 5u);
}

TEST_F(LoaderTest, OutputHttpDefaultsAndRules) {
  write("kpipe.yaml", "");
  write("pipelines/p.yaml", R"(
name: a
input: {topic: t, group: g}
key: /k
output: {http: {url: "http://127.0.0.1:8080"}}
)");
  LoadResult result = load();
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  const PipelineSpec& p = result.config->pipelines.at(0);
  EXPECT_EQ(p.output.http->method, "POST");
  EXPECT_EQ(p.output.http->timeout, 10s);
  EXPECT_EQ(p.output.http->connections, 64u);
  EXPECT_EQ(p.output.http->retry_statuses, (std::vector<int>{408, 425, 429}));
  EXPECT_EQ(p.errors.max_attempts, 0u);

  EXPECT_THAT(pipelineErrors(R"(
name: a
input: {topic: t, group: g}
key: /k
output:
  topic: o
  http: {url: "ftp://x", method: GET, retry_statuses: [429, 700], ca_file: nope.pem}
)"),
              ElementsAre("@/pipelines/p.yaml:6:9: output.http: output goes to a topic or to "
                          "http, not both",
                          "@/pipelines/p.yaml:6:15: output.http.url: \"ftp://x\" is not an "
                          "http:// or https:// URL",
                          "@/pipelines/p.yaml:6:34: output.http.method: \"GET\" is not one of "
                          "POST, PUT, PATCH (did you mean \"PUT\"?)",
                          "@/pipelines/p.yaml:6:61: output.http.retry_statuses[1]: \"700\" is out "
                          "of range (must be between 100 and 599)",
                          "@/pipelines/p.yaml:6:76: output.http.ca_file: CA file @/nope.pem does "
                          "not exist (relative paths start at the directory of kpipe.yaml)"));
}

TEST_F(LoaderTest, MissingSchemaFileIsReportedAtThePath) {
  write("schemas/a.json", "{}");
  EXPECT_THAT(pipelineErrors(R"(
name: a
input: {topic: t, group: g}
key: /k
output: {topic: o}
schema:
  type_field: /type
  types:
    a: schemas/a.json
    b: schemas/b.json
    c: schemas
)"),
              ElementsAre("@/pipelines/p.yaml:9:8: schema.types.b: schema file @/schemas/b.json "
                          "does not exist (relative paths start at the directory of "
                          "kpipe.yaml)",
                          "@/pipelines/p.yaml:10:8: schema.types.c: schema file @/schemas is not "
                          "a regular file"));
}

TEST_F(LoaderTest, PerTypeSchemaNeedsTypeFieldAndTypes) {
  EXPECT_THAT(pipelineErrors(R"(
name: a
input: {topic: t, group: g}
key: /k
output: {topic: o}
schema: {unknown_type: ignore}
)"),
              ElementsAre("@/pipelines/p.yaml:5:9: schema.type_field: missing required key "
                          "\"type_field\"",
                          "@/pipelines/p.yaml:5:9: schema.types: missing required key \"types\"",
                          "@/pipelines/p.yaml:5:24: schema.unknown_type: \"ignore\" is not one of "
                          "error, pass"));
}

TEST_F(LoaderTest, SchemaEvolutionIsGrowthOnlyOrAny) {
  // given: a pipeline that opts out of growth-only evolution
  write("kpipe.yaml", "");
  write("pipelines/p.yaml", std::string(kMinimalPipeline) + "schema_evolution: any\n");

  // when
  LoadResult result = load();

  // then
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  EXPECT_EQ(result.config->pipelines[0].schema_evolution, PipelineSpec::SchemaEvolution::Any);
  EXPECT_THAT(pipelineErrors(R"(
name: a
input: {topic: t, group: g}
key: /k
output: {topic: o}
schema_evolution: backward
)"),
              ElementsAre("@/pipelines/p.yaml:5:19: schema_evolution: \"backward\" is not one of "
                          "growth_only, any"));
}

// --- interpolation in files ---------------------------------------------------------------------

TEST_F(LoaderTest, UnsetVariableIsReportedAtTheValue) {
  write("kpipe.yaml", R"(
kafka:
  bootstrap: ${KAFKA_HOST}
)");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/kpipe.yaml:2:14: kafka.bootstrap: environment variable KAFKA_HOST is "
                          "not set (write ${KAFKA_HOST:-default} for a default)"));
}

TEST_F(LoaderTest, InterpolatesEveryScalarValueButNotKeys) {
  // given
  write("kpipe.yaml", R"(
kafka:
  properties: {"${NOT_A_KEY}": x}
http: {listen: "${HOST:-127.0.0.1}:${PORT}"}
)");
  write("pipelines/p.yaml", R"(
name: ${PIPELINE}
input: {topic: "${PREFIX}events", group: g}
key: /k
output: {topic: cost$$}
max_message_bytes: ${MAX_BYTES:-2MiB}
)");

  // when
  LoadResult result = load({{"PORT", "8080"}, {"PIPELINE", "p1"}, {"PREFIX", "prod."}});

  // then
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  EXPECT_EQ(result.config->kafka.properties.count("${NOT_A_KEY}"), 1u);
  EXPECT_EQ(result.config->http.listen_address, "127.0.0.1");
  EXPECT_EQ(result.config->http.listen_port, 8080);
  const PipelineSpec& p = result.config->pipelines[0];
  EXPECT_EQ(p.name, "p1");
  EXPECT_EQ(p.input.topic, "prod.events");
  EXPECT_EQ(p.output.topic, "cost$");
  EXPECT_EQ(p.max_message_bytes, 2u * 1024 * 1024);
}

TEST_F(LoaderTest, MultiLineSecretIsRefused) {
  write("kpipe.yaml", R"(
kafka:
  properties:
    ssl.key.pem: ${KEY}
)");
  EXPECT_THAT(errors(load({{"KEY", "-----BEGIN KEY-----\nabc\n-----END KEY-----"}})),
              ElementsAre("@/kpipe.yaml:3:18: kafka.properties.ssl.key.pem: environment variable "
                          "KEY contains a line break; secret values must be single-line"));
}

// --- whole files
// ----------------------------------------------------------------------------------

TEST_F(LoaderTest, YamlSyntaxErrorHasItsPosition) {
  write("kpipe.yaml", "");
  write("pipelines/p.yaml", "name: a\n  input: x\n");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/pipelines/p.yaml:2:8: YAML syntax error: illegal map value"));
}

TEST_F(LoaderTest, MissingConfigFile) {
  LoadResult result = load();
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(errors(result), ElementsAre("@/kpipe.yaml: file not found"));
}

TEST_F(LoaderTest, MissingPipelinesDirectory) {
  write("kpipe.yaml", "pipelines: flows\n");
  EXPECT_THAT(errors(load()), ElementsAre("@/kpipe.yaml:1:12: pipelines: pipelines directory "
                                          "@/flows does not exist"));

  // The default directory is checked too, with no line to point at.
  fs::remove_all(dir_ / "pipelines");
  write("kpipe.yaml", "");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/kpipe.yaml: pipelines: pipelines directory @/pipelines does not "
                          "exist"));
}

TEST_F(LoaderTest, EmptyPipelineFile) {
  EXPECT_THAT(pipelineErrors("# TODO\n"),
              ElementsAre("@/pipelines/p.yaml:1:1: file is empty; a pipeline needs at least name, "
                          "input, key and output"));
}

TEST_F(LoaderTest, TopLevelMustBeAMap) {
  write("kpipe.yaml", "- kafka\n");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/kpipe.yaml:1:1: expected a map (kafka, http, pipelines, stores, log, "
                          "shutdown, reload) at the top level, got a list"));

  write("kpipe.yaml", "");
  write("pipelines/p.yaml", "just a string\n");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/pipelines/p.yaml:1:1: expected a map (name, input, key, output, ...) "
                          "at the top level, got the string \"just a string\""));
}

TEST_F(LoaderTest, OneDocumentPerFile) {
  write("kpipe.yaml", "kafka: {}\n---\nhttp: {}\n");
  EXPECT_THAT(errors(load()), ElementsAre("@/kpipe.yaml:3:1: found 2 YAML documents (\"---\"); a "
                                          "config file holds exactly one"));
}

TEST_F(LoaderTest, RefusesFilesOverFourMiB) {
  write("kpipe.yaml", "");
  write("pipelines/p.yaml",
        std::string(kMinimalPipeline) + "# " + std::string(4 * 1024 * 1024, 'x') + "\n");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/pipelines/p.yaml: file is larger than 4 MiB, the limit for a config "
                          "file"));
}

TEST_F(LoaderTest, DeepNestingIsAnErrorNotACrash) {
  write("kpipe.yaml", "kafka: " + std::string(100'000, '[') + "\n");
  EXPECT_THAT(errors(load()), ElementsAre("@/kpipe.yaml: YAML nesting is too deep"));
}

TEST_F(LoaderTest, AliasesDoNotMultiplyWork) {
  // A "billion laughs" file: aliases share nodes in yaml-cpp, and the loader only reads the keys
  // the format names, so this fails fast on the unknown key instead of expanding anything.
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 30; ++i) {
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) yaml += (j ? ", *a" : "*a") + std::to_string(i - 1);
    yaml += "]\n";
  }
  write("kpipe.yaml", yaml);
  LoadResult result = load();
  EXPECT_EQ(result.errors.size(), 30u);
}

// --- many errors at once ------------------------------------------------------------------------

TEST_F(LoaderTest, ReportsEveryErrorAcrossFilesInFileOrder) {
  // given: problems in kpipe.yaml and in two pipeline files
  write("kpipe.yaml", R"(
kafka:
  bootstrap: ""
log: {level: loud}
)");
  write("pipelines/a.yaml", R"(
name: a
input: {topic: t}
key: /k
output: {topic: o, partition: 1}
)");
  write("pipelines/b.yaml", R"(
name: b
input: {topic: t, group: g}
key: /k
output: {topic: o}
errors: {topic: ""}
max_message_bytes: 0
)");

  // when
  LoadResult result = load();

  // then
  EXPECT_FALSE(result.config.has_value());
  EXPECT_THAT(errors(result),
              ElementsAre("@/kpipe.yaml:2:14: kafka.bootstrap: must not be empty",
                          "@/kpipe.yaml:3:14: log.level: \"loud\" is not one of debug, info, warn, "
                          "error",
                          "@/pipelines/a.yaml:2:8: input.group: missing required key \"group\"",
                          "@/pipelines/a.yaml:4:20: output.partition: unknown key \"partition\" "
                          "(did you mean \"partitioner\"?)",
                          "@/pipelines/b.yaml:5:17: errors.topic: must not be empty",
                          "@/pipelines/b.yaml:6:20: max_message_bytes: \"0\" is too small (must be "
                          "at least 1 byte)"));
}

TEST_F(LoaderTest, DuplicatePipelineNamesNameBothFiles) {
  write("kpipe.yaml", "");
  write("pipelines/a.yaml", kMinimalPipeline);
  write("pipelines/b.yaml", kMinimalPipeline);
  EXPECT_THAT(errors(load()),
              ElementsAre("@/pipelines/b.yaml:1:7: name: duplicate pipeline name \"users\" (also "
                          "defined in @/pipelines/a.yaml)"));
}

TEST_F(LoaderTest, ErrorPathsAreRelativeWhenTheConfigPathIs) {
  // given
  write("kpipe.yaml", "");
  write("pipelines/p.yaml", "name: a\n");
  fs::path previous = fs::current_path();
  fs::current_path(dir_.parent_path());

  // when
  LoadResult result = loadConfig(dir_.filename() / "kpipe.yaml",
                                 [](std::string_view) { return std::optional<std::string>(); });
  fs::current_path(previous);

  // then
  ASSERT_FALSE(result.errors.empty());
  EXPECT_EQ(result.errors[0].where.file, (dir_.filename() / "pipelines/p.yaml").string());
}

}  // namespace
}  // namespace kpipe::config
