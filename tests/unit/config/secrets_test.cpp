// Secrets in the config: x_file for every free-text string field and NAME_file in the maps of
// strings (kafka.*properties, output.http.headers), ${VAR} values with line breaks, and what is
// masked (config/redact.h).

#include "daemon/config/loader.h"
#include "daemon/config/redact.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace kpipe::config {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kSecret = "s3cr3t-v@lue";

class SecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("kpipe_secrets_" + std::string(test->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "pipelines");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& relative, std::string_view text) {
    if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
    fs::create_directories((dir_ / relative).parent_path());
    std::ofstream(dir_ / relative, std::ios::binary) << text;
  }

  LoadResult load(std::map<std::string, std::string> env = {}) {
    return loadConfig(dir_ / "kpipe.yaml",
                      [env = std::move(env)](std::string_view name) -> std::optional<std::string> {
                        auto it = env.find(std::string(name));
                        if (it == env.end()) return std::nullopt;
                        return it->second;
                      });
  }

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

  // The errors of a config whose kpipe.yaml is `main`; every message is checked for kSecret.
  std::vector<std::string> mainErrors(std::string_view main) {
    write("kpipe.yaml", main);
    LoadResult result = load();
    EXPECT_FALSE(result.ok());
    std::vector<std::string> out = errors(result);
    for (const std::string& e : out) EXPECT_THAT(e, Not(HasSubstr(kSecret)));
    return out;
  }

  fs::path dir_;
};

TEST_F(SecretsTest, EveryStringFieldReadsItsFileRelativeToTheConfigDirectory) {
  // given: secrets in files, as a mounted Kubernetes Secret would hold them
  write("secrets/bootstrap", "broker-1:9093,broker-2:9093\n");  // one trailing newline: stripped
  write("secrets/redis-url", std::string("redis://kpipe:") + kSecret + "@redis:6379/2");
  write("secrets/topic", "prod.user-events\r\n");  // a Windows line end too
  write("secrets/token", std::string("Bearer ") + kSecret + "\n");
  write("secrets/hook", "https://hooks.example.com/services/T0/B0/XYZ\n");
  write("kpipe.yaml", R"(
kafka:
  bootstrap_file: secrets/bootstrap
stores:
  ids: {type: redis, url_file: secrets/redis-url}
)");
  write("pipelines/p.yaml", R"(
name: p
input: {topic_file: secrets/topic, group: g}
key: /k
dedup: {id: /id, store: ids}
output:
  http:
    url_file: ${SECRETS_DIR}/hook
    headers: {Authorization_file: secrets/token, X-Plain: plain}
)");

  // when
  LoadResult result = load({{"SECRETS_DIR", (dir_ / "secrets").string()}});

  // then
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  const Config& config = *result.config;
  EXPECT_EQ(config.kafka.bootstrap, "broker-1:9093,broker-2:9093");
  const StoreSpec& store = config.stores.at("ids");
  EXPECT_EQ(store.redis.password, kSecret);
  EXPECT_EQ(store.redis.display, "redis://kpipe:***@redis:6379/2");
  const PipelineSpec& p = config.pipelines.at(0);
  EXPECT_EQ(p.input.topic, "prod.user-events");
  ASSERT_TRUE(p.output.http.has_value());
  EXPECT_EQ(p.output.http->url, "https://hooks.example.com/services/T0/B0/XYZ");
  EXPECT_TRUE(p.output.http->url_secret);
  EXPECT_EQ(p.output.http->headers.at("Authorization"), std::string("Bearer ") + kSecret);
  EXPECT_EQ(p.output.http->headers.at("X-Plain"), "plain");
  EXPECT_EQ(p.output.http->secret_headers, std::set<std::string>{"Authorization"});
  // Every file read is listed, so that a reload can follow them.
  std::vector<std::string> files;
  for (const fs::path& file : config.secret_files) files.push_back(file.filename().string());
  EXPECT_THAT(files, ElementsAre("bootstrap", "redis-url", "topic", "hook", "token"));
}

TEST_F(SecretsTest, FileContentIsNotInterpolated) {
  write("secret", "pa$$word${NOT_A_VAR}\n");
  write("kpipe.yaml", "kafka:\n  properties: {sasl.password_file: secret}\n");
  LoadResult result = load();
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  EXPECT_EQ(result.config->kafka.properties.at("sasl.password"), "pa$$word${NOT_A_VAR}");
}

TEST_F(SecretsTest, PropertyMapsTakeNameFileAndPassEverythingElseThrough) {
  // given: a SASL_SSL cluster; librdkafka's own *.location settings are paths it reads itself
  write("kafka-password", std::string(kSecret) + "\n");
  write("kpipe.yaml", R"(
kafka:
  bootstrap: broker:9093
  properties:
    security.protocol: SASL_SSL
    sasl.mechanism: SCRAM-SHA-512
    sasl.username: kpipe
    sasl.password_file: kafka-password
    ssl.ca.location: /etc/ssl/certs/ca-certificates.crt
    ssl.endpoint.identification.algorithm: https
  consumer_properties: {session.timeout.ms: 45000}
  producer_properties: {sasl.oauthbearer.client.secret_file: kafka-password}
)");

  // when
  LoadResult result = load();

  // then
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  const KafkaSpec& kafka = result.config->kafka;
  EXPECT_EQ(kafka.properties, (std::map<std::string, std::string>{
                                  {"security.protocol", "SASL_SSL"},
                                  {"sasl.mechanism", "SCRAM-SHA-512"},
                                  {"sasl.username", "kpipe"},
                                  {"sasl.password", kSecret},
                                  {"ssl.ca.location", "/etc/ssl/certs/ca-certificates.crt"},
                                  {"ssl.endpoint.identification.algorithm", "https"},
                              }));
  EXPECT_EQ(kafka.consumer_properties.at("session.timeout.ms"), "45000");
  EXPECT_EQ(kafka.producer_properties.at("sasl.oauthbearer.client.secret"), kSecret);
  EXPECT_EQ(kafka.secret_properties,
            (std::set<std::string>{"sasl.password", "sasl.oauthbearer.client.secret"}));
  // Shown masked.
  auto shown = redactProperties(kafka.properties, kafka.secret_properties);
  EXPECT_EQ(shown.at("sasl.password"), "***");
  EXPECT_EQ(shown.at("sasl.username"), "kpipe");
}

TEST_F(SecretsTest, MissingFileIsReportedAtThePathWithTheResolvedName) {
  EXPECT_THAT(mainErrors("kafka:\n  bootstrap_file: nope/bootstrap\n"),
              ElementsAre("@/kpipe.yaml:2:19: kafka.bootstrap_file: cannot read @/nope/bootstrap: "
                          "file not found (relative paths start at the directory of kpipe.yaml)"));
}

TEST_F(SecretsTest, ADirectoryIsNotASecretFile) {
  fs::create_directories(dir_ / "secrets");
  EXPECT_THAT(mainErrors("kafka:\n  properties: {sasl.password_file: secrets}\n"),
              ElementsAre("@/kpipe.yaml:2:36: kafka.properties.sasl.password_file: cannot read "
                          "@/secrets: not a regular file"));
}

TEST_F(SecretsTest, UnreadableFileIsReported) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  write("secret", kSecret);
  ::chmod((dir_ / "secret").c_str(), 0);
  EXPECT_THAT(mainErrors("kafka:\n  properties: {sasl.password_file: secret}\n"),
              ElementsAre("@/kpipe.yaml:2:36: kafka.properties.sasl.password_file: cannot read "
                          "@/secret: cannot open: Permission denied"));
}

TEST_F(SecretsTest, BothTheValueAndItsFileIsAnError) {
  write("secret", kSecret);
  write("kpipe.yaml", R"(
kafka:
  bootstrap: a:9092
  bootstrap_file: secret
  properties: {sasl.password: x, sasl.password_file: secret}
)");
  write("pipelines/p.yaml", R"(
name: p
input: {topic: t, topic_file: secret, group: g}
key: /k
output: {topic: o}
)");
  EXPECT_THAT(
      errors(load()),
      ElementsAre(
          "@/kpipe.yaml:3:3: kafka.bootstrap_file: give bootstrap or bootstrap_file, not both",
          "@/kpipe.yaml:4:34: kafka.properties.sasl.password_file: give sasl.password or "
          "sasl.password_file, not both",
          "@/pipelines/p.yaml:2:19: input.topic_file: give topic or topic_file, not both"));
}

TEST_F(SecretsTest, LineBreakInsideTheFileIsRefusedWithoutShowingIt) {
  write("secret", std::string(kSecret) + "\nsecond line\n");
  write("key.pem", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n");
  EXPECT_THAT(
      mainErrors("kafka:\n  properties: {sasl.password_file: secret, ssl.key.pem_file: key.pem}\n"),
      ElementsAre("@/kpipe.yaml:2:36: kafka.properties.sasl.password_file: @/secret has a line "
                  "break inside; only one at the end is allowed",
                  "@/kpipe.yaml:2:62: kafka.properties.ssl.key.pem_file: @/key.pem has a line "
                  "break inside; only one at the end is allowed (for PEM keys and certificates "
                  "use librdkafka's ssl.key.location, ssl.certificate.location and "
                  "ssl.ca.location)"));
}

TEST_F(SecretsTest, TwoTrailingNewlinesAreALineBreakInside) {
  write("secret", std::string(kSecret) + "\n\n");
  EXPECT_THAT(mainErrors("kafka:\n  bootstrap_file: secret\n"),
              ElementsAre("@/kpipe.yaml:2:19: kafka.bootstrap_file: @/secret has a line break "
                          "inside; only one at the end is allowed"));
}

TEST_F(SecretsTest, FileOver64KiBIsRefused) {
  write("big", std::string(64 * 1024 + 1, 'x'));
  write("limit", std::string(64 * 1024, 'x'));
  EXPECT_THAT(mainErrors("kafka:\n  bootstrap_file: big\n  properties: {a_file: limit}\n"),
              ElementsAre("@/kpipe.yaml:2:19: kafka.bootstrap_file: cannot read @/big: file is "
                          "larger than 64 KiB, the limit for a secret file"));
}

TEST_F(SecretsTest, NulByteIsRefused) {
  write("secret", std::string("ab\0cd", 5));
  EXPECT_THAT(mainErrors("kafka:\n  bootstrap_file: secret\n"),
              ElementsAre("@/kpipe.yaml:2:19: kafka.bootstrap_file: @/secret holds a NUL byte"));
}

TEST_F(SecretsTest, AnEmptyPathOrAMapIsNotAFile) {
  EXPECT_THAT(mainErrors("kafka:\n  bootstrap_file: ''\nstores:\n  r: {type: redis, url_file: "
                         "{a: 1}}\n"),
              ElementsAre("@/kpipe.yaml:2:19: kafka.bootstrap_file: expected the path of a file "
                          "holding the value, got an empty string",
                          "@/kpipe.yaml:4:30: stores.r.url_file: expected a file path, got a map"));
}

TEST_F(SecretsTest, AFileValueThatDoesNotParseIsReportedWithoutItsContent) {
  write("url", std::string("https://x/?token=") + kSecret);
  write("empty", "\n");
  write("kpipe.yaml", "kafka:\n  bootstrap_file: empty\n");
  write("pipelines/p.yaml", R"(
name: p
input: {topic: t, group: g}
key: /k
output: {http: {url_file: url, tls: {verify: nope}}}
)");
  write("pipelines/q.yaml",
        "name: q\ninput: {topic: t, group: g}\nkey: /k\noutput: {http: "
        "{url_file: empty}}\n");
  write("pipelines/r.yaml", R"(
name: r
input: {topic: t, group: g}
key: /k
output: {http: {url_file: bad}}
)");
  write("bad", std::string("ftp://") + kSecret);
  LoadResult result = load();
  std::vector<std::string> out = errors(result);
  for (const std::string& e : out) EXPECT_THAT(e, Not(HasSubstr(kSecret)));
  EXPECT_THAT(out,
              ElementsAre("@/kpipe.yaml:2:19: kafka.bootstrap_file: the file is empty",
                          "@/pipelines/p.yaml:4:46: output.http.tls.verify: \"nope\" is not a "
                          "boolean (use true or false)",
                          "@/pipelines/q.yaml:4:27: output.http.url_file: the file is empty",
                          "@/pipelines/r.yaml:4:27: output.http.url_file: the URL in the file is "
                          "not an http:// or https:// URL"));
}

TEST_F(SecretsTest, SuggestsTheFileVariantOfAMisspelledKey) {
  EXPECT_THAT(mainErrors("kafka:\n  bootstrap_fiel: x\n"),
              ElementsAre("@/kpipe.yaml:2:3: kafka.bootstrap_fiel: unknown key \"bootstrap_fiel\" "
                          "(did you mean \"bootstrap_file\"?)"));
}

TEST_F(SecretsTest, NamesAndReferencesHaveNoFileVariant) {
  write("kpipe.yaml", "");
  write("pipelines/p.yaml", R"(
name_file: n
input: {topic: t, group: g}
key: /k
dedup: {id: /id, store_file: s}
output: {topic: o}
)");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/pipelines/p.yaml:1:1: name: missing required key \"name\"",
                          "@/pipelines/p.yaml:1:1: name_file: unknown key \"name_file\" (expected "
                          "one of: name, input, key, ordering, concurrency, max_pending, "
                          "revoke_timeout, schema, schema_evolution, dedup, output, errors, "
                          "max_message_bytes)",
                          "@/pipelines/p.yaml:4:18: dedup.store_file: unknown key \"store_file\" "
                          "(expected one of: id, store, on_duplicate)"));
}

TEST_F(SecretsTest, TypeFieldsOfAnotherStoreIncludeTheFileVariants) {
  write("u", "redis://h:1/0");
  EXPECT_THAT(mainErrors("stores:\n  m: {type: memory, url_file: u, prefix_file: u}\n"),
              ElementsAre("@/kpipe.yaml:2:31: stores.m.url_file: url_file applies to redis "
                          "stores, not memory",
                          "@/kpipe.yaml:2:47: stores.m.prefix_file: prefix_file applies to redis "
                          "stores, not memory"));
}

TEST_F(SecretsTest, EnvironmentValueWithALineBreakIsRefusedWithTheVariableNamed) {
  write("kpipe.yaml", R"(
kafka:
  properties:
    sasl.password: ${PASSWORD}
    sasl.username: ${USER:-kpipe}
)");
  LoadResult result =
      load({{"PASSWORD", std::string(kSecret) + "\n"}, {"USER", std::string("a\r") + kSecret}});
  std::vector<std::string> out = errors(result);
  for (const std::string& e : out) EXPECT_THAT(e, Not(HasSubstr(kSecret)));
  EXPECT_THAT(out, ElementsAre("@/kpipe.yaml:3:20: kafka.properties.sasl.password: environment "
                               "variable PASSWORD contains a line break; secret values must be "
                               "single-line",
                               "@/kpipe.yaml:4:20: kafka.properties.sasl.username: environment "
                               "variable USER contains a line break; secret values must be "
                               "single-line"));
}

TEST_F(SecretsTest, ADefaultWithALineBreakIsRefused) {
  write("kpipe.yaml", "kafka:\n  bootstrap: \"${NOPE:-a\\nb}\"\n");
  EXPECT_THAT(errors(load()), ElementsAre("@/kpipe.yaml:2:14: kafka.bootstrap: value spans "
                                          "several lines; values must be single-line"));
}

TEST_F(SecretsTest, FingerprintsChangeWithTheSecretsContent) {
  write("secret", "one");
  write("kpipe.yaml", R"(
kafka: {properties: {sasl.password_file: secret}}
stores: {r: {type: redis, url_file: secret}}
)");
  write("pipelines/p.yaml", R"(
name: p
input: {topic: t, group: g}
key: /k
output: {http: {url: "https://x/", headers: {Authorization_file: secret}}}
)");
  write("secret", "redis://h:1/0");
  LoadResult before = load();
  write("secret", "redis://h:1/1");
  LoadResult after = load();
  ASSERT_TRUE(before.ok() && after.ok()) << ::testing::PrintToString(errors(before));
  EXPECT_NE(before.config->kafka_fingerprint, after.config->kafka_fingerprint);
  EXPECT_NE(before.config->stores.at("r").fingerprint, after.config->stores.at("r").fingerprint);
  EXPECT_NE(before.config->pipelines[0].fingerprint, after.config->pipelines[0].fingerprint);
  // ... but never hold it.
  EXPECT_THAT(after.config->kafka_fingerprint, Not(HasSubstr("redis://h:1/1")));
  LoadResult again = load();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.config->kafka_fingerprint, after.config->kafka_fingerprint);
}

TEST_F(SecretsTest, HttpUrlInMessagesHasItsCredentialsMasked) {
  write("kpipe.yaml", "");
  write("pipelines/p.yaml", std::string(R"(
name: p
input: {topic: t, group: g}
key: /k
output: {http: {url: "ftp://u:)") +
                                kSecret + R"(@host/?token=)" + kSecret + R"("}}
)");
  std::vector<std::string> out = errors(load());
  for (const std::string& e : out) EXPECT_THAT(e, Not(HasSubstr(kSecret)));
  EXPECT_THAT(out,
              ElementsAre("@/pipelines/p.yaml:4:22: output.http.url: "
                          "\"ftp://u:***@host/?token=***\" is not an http:// or https:// URL"));
}

// --- output.http.tls

TEST_F(SecretsTest, TlsVerifyIsOnUnlessTurnedOff) {
  write("kpipe.yaml", "");
  write("pipelines/a.yaml",
        "name: a\ninput: {topic: t, group: g}\nkey: /k\noutput: {http: {url: "
        "\"https://x/\"}}\n");
  write("pipelines/b.yaml",
        "name: b\ninput: {topic: t, group: g}\nkey: /k\noutput: {http: {url: "
        "\"https://x/\", tls: {verify: false}}}\n");
  LoadResult result = load();
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(errors(result));
  EXPECT_TRUE(result.config->pipelines[0].output.http->tls_verify);
  EXPECT_FALSE(result.config->pipelines[1].output.http->tls_verify);
}

TEST_F(SecretsTest, TlsRules) {
  write("ca.pem", "x");
  write("kpipe.yaml", "");
  write("pipelines/a.yaml",
        "name: a\ninput: {topic: t, group: g}\nkey: /k\noutput: {http: {url: "
        "\"http://x/\", tls: {verify: true}}}\n");
  write("pipelines/b.yaml",
        "name: b\ninput: {topic: t, group: g}\nkey: /k\noutput: {http: {url: "
        "\"https://x/\", ca_file: ca.pem, tls: {verify: false, ca: x}}}\n");
  EXPECT_THAT(errors(load()),
              ElementsAre("@/pipelines/a.yaml:4:40: output.http.tls: tls applies to https:// URLs; "
                          "this one is http://",
                          "@/pipelines/b.yaml:4:45: output.http.ca_file: not used with tls.verify: "
                          "false (nothing is verified); remove one of them",
                          "@/pipelines/b.yaml:4:74: output.http.tls.ca: unknown key \"ca\" "
                          "(expected one of: verify)"));
}

// --- redact.h

TEST(RedactTest, SecretPropertiesByName) {
  for (const char* name :
       {"sasl.password", "ssl.key.password", "ssl.keystore.password",
        "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config", "sasl.oauthbearer.extensions",
        "ssl.key.pem", "SASL.PASSWORD", "sasl.jaas.config", "ssl_key"}) {
    EXPECT_TRUE(isSecretProperty(name)) << name;
  }
  for (const char* name :
       {"security.protocol", "sasl.mechanism", "sasl.username", "ssl.key.location",
        "ssl.certificate.pem", "ssl.ca.pem", "sasl.kerberos.keytab",
        "sasl.oauthbearer.token.endpoint.url", "linger.ms"}) {
    EXPECT_FALSE(isSecretProperty(name)) << name;
  }
}

TEST(RedactTest, SecretHeadersByName) {
  for (const char* name :
       {"Authorization", "proxy-authorization", "Cookie", "X-Api-Key", "X-Auth-Token",
        "X-Hub-Signature", "apikey", "X-Session-Id", "X-Client-Secret"}) {
    EXPECT_TRUE(isSecretHeader(name)) << name;
  }
  for (const char* name : {"Content-Type", "X-Request-Source", "Accept", "traceparent"}) {
    EXPECT_FALSE(isSecretHeader(name)) << name;
  }
}

TEST(RedactTest, Urls) {
  EXPECT_EQ(redactUrl("https://api.example.com/events"), "https://api.example.com/events");
  EXPECT_EQ(redactUrl("https://user:pw@host:8443/p?token=abc&x=1#frag"),
            "https://user:***@host:8443/p?token=***&x=***#***");
  EXPECT_EQ(redactUrl("https://ghp_token@github.com/x"), "https://***@github.com/x");
  EXPECT_EQ(redactUrl("redis://:pw@[::1]:6379/0"), "redis://:***@[::1]:6379/0");
  EXPECT_EQ(redactUrl("http://h/?flag&&k="), "http://h/?***&&k=***");
  EXPECT_EQ(redactUrl("http://h?a=1"), "http://h?a=***");
  EXPECT_EQ(redactUrl("broker:9092,other:9092"), "broker:9092,other:9092");
  EXPECT_EQ(redactUrl("not a url: a://b"), "not a url: a://b");
  EXPECT_EQ(redactUrl(""), "");
  EXPECT_EQ(redactSecretUrl("https://hooks.example.com/services/T0/B0/XYZ?x=1"),
            "https://hooks.example.com/***");
  EXPECT_EQ(redactSecretUrl("https://u:p@h:1"), "https://h:1/***");
  EXPECT_EQ(redactSecretUrl("garbage"), "***");
}

TEST(RedactTest, Maps) {
  std::map<std::string, std::string> headers = {{"Authorization", "Bearer x"},
                                                {"X-Tenant", "acme"},
                                                {"X-From-File", "y"},
                                                {"X-Callback", "https://u:p@h/"}};
  EXPECT_EQ(redactHeaders(headers, {"X-From-File"}),
            (std::map<std::string, std::string>{{"Authorization", "***"},
                                                {"X-Tenant", "acme"},
                                                {"X-From-File", "***"},
                                                {"X-Callback", "https://u:***@h/"}}));
  EXPECT_EQ(redactProperties({{"sasl.password", "x"}, {"linger.ms", "5"}}),
            (std::map<std::string, std::string>{{"sasl.password", "***"}, {"linger.ms", "5"}}));
}

}  // namespace
}  // namespace kpipe::config
