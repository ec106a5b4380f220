// Schema validation throughput on the demo event schemas, found as the daemon finds them:
// config/kpipe.yaml is loaded and each pipeline's schemas compiled (user-events: one schema,
// schemas/user-event.json; payments: one per event type). Messages are ~150-byte events like
// tools/gen_events.py and tools/gen_payments.py make, valid or failing the schema in one of
// several ways (then explained, as the error record's reason is).
//   - ParseValidate: parse (as the router does: iterative, strict UTF-8, pooled memory) + validate
//   - ValidateOnly: the same documents parsed beforehand
//   - Route: pipeline::Router::route, the whole message path (decode, key, id, type, schema)
// Bytes/s are of message values; items/s are messages.
//   cmake --build build --target validate_bench && build/tests/bench/validate_bench
#include "daemon/pipeline/router.h"
#include "daemon/schema/rapidjson.h"
#include "daemon/schema/validator.h"

#include "tests/bench/bench_support.h"
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <variant>
#include <vector>

namespace kpipe {
namespace {

namespace fs = std::filesystem;
using bench::demoPipeline;
using bench::die;
using bench::reportCounters;
using bench::uuid;

schema::SchemaPtr compile(const fs::path& file) {
  auto compiled = schema::compileFile(file);
  if (auto* error = std::get_if<schema::CompileError>(&compiled)) die(error->message);
  return std::get<schema::SchemaPtr>(compiled);
}

// user-events' schema (config/pipelines/user-events.yaml: schema: ../schemas/user-event.json).
const schema::Schema& userEventSchema() {
  static const schema::SchemaPtr schema = compile(*demoPipeline("user-events").schema.file);
  return *schema;
}

std::vector<std::string> userEvents(bool valid, size_t n) {
  static constexpr const char* kTypes[] = {"user.signed_up", "user.updated", "user.deleted"};
  static constexpr const char* kPlans[] = {"free", "pro", "team"};
  std::mt19937_64 rng(valid ? 1 : 2);
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    char user[16];
    std::snprintf(user, sizeof user, "user-%05u", static_cast<unsigned>(rng() % 500));
    std::string msg_id = "\"" + uuid(rng) + "\"";
    std::string type = std::string("\"") + kTypes[rng() % 3] + "\"";
    std::string ts = std::to_string(1'700'000'000'000 + rng() % 1'000'000'000);
    std::string plan = std::string("\"") + kPlans[rng() % 3] + "\"";
    std::string age = std::to_string(13 + rng() % 80);
    if (!valid) {
      switch (i % 5) {
        case 0:
          ts = "\"yesterday\"";
          break;  // type
        case 1:
          type = "\"user.exploded\"";
          break;  // enum
        case 2:
          msg_id = "\"not-a-uuid-42\"";
          break;  // pattern
        case 3:
          age = "7";
          plan = "\"gold\"";
          break;  // minimum, enum (two failures)
        case 4:
          ts = "-1";
          break;  // minimum
      }
    }
    out.push_back("{\"msg_id\":" + msg_id + ",\"user_id\":\"" + user + "\",\"type\":" + type +
                  ",\"ts\":" + ts + ",\"data\":{\"email\":\"" + user +
                  "@example.com\",\"plan\":" + plan + ",\"age\":" + age + "}}");
  }
  return out;
}

// As tools/gen_payments.py: authorizations and refunds (valid), or failing their type's schema.
std::vector<std::string> payments(bool valid, size_t n) {
  std::mt19937_64 rng(valid ? 3 : 4);
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    char account[16];
    std::snprintf(account, sizeof account, "acc-%04u", static_cast<unsigned>(rng() % 200));
    const std::string amount = valid ? std::to_string(1 + rng() % 100'000) : "0";
    std::string head =
        "{\"msg_id\":\"" + uuid(rng) + "\",\"account_id\":\"" + account + "\",\"amount\":" + amount;
    if (i % 3 != 2) {
      out.push_back(head + ",\"type\":\"payment.authorized\",\"currency\":\"" +
                    (valid ? "EUR" : "euro") + "\"}");
    } else {
      out.push_back(head + ",\"type\":\"payment.refunded\",\"refund_of\":\"" + uuid(rng) + "\"}");
    }
  }
  return out;
}

constexpr size_t kMessages = 1000;

// Validates like the router: failures collected (at most 16) and explained when invalid.
bool check(schema::Validator& validator, const schema::Schema& schema,
           const rapidjson::Value& document, std::vector<schema::Failure>& failures,
           std::string& reason) {
  failures.clear();
  if (validator.validate(schema, document, &failures)) return true;
  reason = schema::explain(failures);
  return false;
}

void BM_ParseValidate(benchmark::State& state, bool valid) {
  const std::vector<std::string> messages = userEvents(valid, kMessages);
  const schema::Schema& schema = userEventSchema();
  schema::Validator validator;
  pipeline::detail::PooledParser parser;
  std::vector<schema::Failure> failures;
  std::string reason;
  for (auto _ : state) {
    for (const std::string& message : messages) {
      if (check(validator, schema, bench::parseOrDie(parser, message), failures, reason) != valid) {
        state.SkipWithError("unexpected verdict");
        return;
      }
      benchmark::DoNotOptimize(reason.data());
    }
  }
  reportCounters(state, messages);
}

void BM_ValidateOnly(benchmark::State& state, bool valid) {
  const std::vector<std::string> messages = userEvents(valid, kMessages);
  std::vector<rapidjson::Document> documents(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) documents[i].Parse(messages[i].c_str());
  const schema::Schema& schema = userEventSchema();
  schema::Validator validator;
  std::vector<schema::Failure> failures;
  std::string reason;
  for (auto _ : state) {
    for (const rapidjson::Document& document : documents) {
      if (check(validator, schema, document, failures, reason) != valid) {
        state.SkipWithError("unexpected verdict");
        return;
      }
      benchmark::DoNotOptimize(reason.data());
    }
  }
  reportCounters(state, messages);
}

// Valid, without asking for failures: the cheapest check valijson can do.
void BM_ValidateOnlyNoFailures(benchmark::State& state) {
  const std::vector<std::string> messages = userEvents(true, kMessages);
  std::vector<rapidjson::Document> documents(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) documents[i].Parse(messages[i].c_str());
  const schema::Schema& schema = userEventSchema();
  schema::Validator validator;
  for (auto _ : state) {
    for (const rapidjson::Document& document : documents) {
      if (!validator.validate(schema, document, nullptr)) {
        state.SkipWithError("unexpected verdict");
        return;
      }
    }
  }
  reportCounters(state, messages);
}

void BM_Route(benchmark::State& state, const std::string& pipeline, bool valid) {
  const std::vector<std::string> messages =
      pipeline == "payments" ? payments(valid, kMessages) : userEvents(valid, kMessages);
  auto built = pipeline::Router::build(demoPipeline(pipeline));
  if (auto* error = std::get_if<std::string>(&built)) die(*error);
  pipeline::Router& router = *std::get<std::unique_ptr<pipeline::Router>>(built);
  pipeline::Decision decision;
  const pipeline::Route expected = valid ? pipeline::Route::Output : pipeline::Route::Error;
  for (auto _ : state) {
    for (const std::string& message : messages) {
      router.route(message.data(), message.size(), decision);
      if (decision.route != expected) {
        state.SkipWithError(("unexpected route: " + decision.reason).c_str());
        return;
      }
    }
  }
  reportCounters(state, messages);
}

BENCHMARK_CAPTURE(BM_ParseValidate, valid, true);
BENCHMARK_CAPTURE(BM_ParseValidate, invalid_explained, false);
BENCHMARK_CAPTURE(BM_ValidateOnly, valid, true);
BENCHMARK_CAPTURE(BM_ValidateOnly, invalid_explained, false);
BENCHMARK(BM_ValidateOnlyNoFailures);
BENCHMARK_CAPTURE(BM_Route, user_events_valid, std::string("user-events"), true);
BENCHMARK_CAPTURE(BM_Route, user_events_invalid, std::string("user-events"), false);
BENCHMARK_CAPTURE(BM_Route, payments_valid, std::string("payments"), true);
BENCHMARK_CAPTURE(BM_Route, payments_invalid, std::string("payments"), false);

}  // namespace
}  // namespace kpipe
