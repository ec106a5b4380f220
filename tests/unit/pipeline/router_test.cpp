#include "daemon/pipeline/router.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace kpipe::pipeline {
namespace {

using namespace std::chrono_literals;

std::filesystem::path sourceDir() {
  const char* dir = std::getenv("KPIPE_SOURCE_DIR");
  return dir ? dir : KPIPE_SOURCE_DIR_DEFAULT;
}

config::PipelineSpec userEvents() {
  config::PipelineSpec spec;
  spec.name = "user-events";
  spec.input.topic = "user-events";
  spec.input.group = "g";
  spec.key_pointer = "/user_id";
  spec.schema.file = sourceDir() / "schemas" / "user-event.json";
  spec.dedup = config::DedupSpec{"/msg_id", "", config::DedupSpec::OnDuplicate::Audit};
  spec.output.topic = "users";
  spec.errors.topic = "user-events.errors";
  spec.errors.audit_topic = "user-events.audit";
  spec.max_message_bytes = 4096;
  return spec;
}

const std::string kValid =
    R"({"msg_id":"6f1c8f9e-8a43-4c1e-9a6d-2b5b0e4d7c11","user_id":"u-1","type":"user.updated",)"
    R"("ts":1700000000000,"data":{"plan":"pro"}})";

class RouterTest : public ::testing::Test {
 protected:
  void build(const config::PipelineSpec& spec) {
    auto built = Router::build(spec);
    ASSERT_TRUE(std::holds_alternative<std::unique_ptr<Router>>(built))
        << std::get<std::string>(built);
    router_ = std::move(std::get<std::unique_ptr<Router>>(built));
  }
  Decision route(const std::string& value) {
    Decision d;
    router_->route(value.data(), value.size(), d);
    return d;
  }
  std::unique_ptr<Router> router_;
};

TEST_F(RouterTest, ValidEventGoesToOutputKeyedByPointer) {
  build(userEvents());
  Decision d = route(kValid);
  EXPECT_EQ(d.route, Route::Output) << d.reason;
  EXPECT_EQ(d.output_key, "u-1");
  EXPECT_EQ(d.id, "6f1c8f9e-8a43-4c1e-9a6d-2b5b0e4d7c11");
  EXPECT_FALSE(d.reserved);  // the worker reserves, when the message's turn comes
}

TEST_F(RouterTest, ValidUtf8BeyondAsciiGoesToOutput) {
  build(userEvents());
  // A user id with a 4-byte character: the validating parse, not the ASCII one.
  std::string value = kValid;
  value.replace(value.find("u-1"), 3, "u-\xf0\x9f\x99\x82");
  Decision d = route(value);
  EXPECT_EQ(d.route, Route::Output) << d.reason;
  EXPECT_EQ(d.output_key, "u-\xf0\x9f\x99\x82");
}

TEST_F(RouterTest, DuplicateIsAuditedWithTheIdAndWhatTheStoreSaid) {
  build(userEvents());
  Decision d = route(kValid);
  router_->markDuplicate(d, dedup::ReserveResult::Done);
  EXPECT_EQ(d.route, Route::Audit);
  EXPECT_EQ(d.stage, stage::kDedup);
  EXPECT_FALSE(d.reserved);
  EXPECT_NE(d.reason.find("6f1c8f9e"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("already processed"), std::string::npos) << d.reason;
}

TEST_F(RouterTest, OnDuplicateDrop) {
  auto spec = userEvents();
  spec.dedup->on_duplicate = config::DedupSpec::OnDuplicate::Drop;
  build(spec);
  Decision d = route(kValid);
  router_->markDuplicate(d, dedup::ReserveResult::Done);
  EXPECT_EQ(d.route, Route::Drop);
}

struct BadInput {
  const char* name;
  std::string value;
  std::string_view stage;
  const char* reason_part;
};

class RouterBadInputTest : public RouterTest, public ::testing::WithParamInterface<BadInput> {};

TEST_P(RouterBadInputTest, RoutesToErrorsWithStageAndReason) {
  build(userEvents());
  const BadInput& bad = GetParam();
  Decision d = route(bad.value);
  EXPECT_EQ(d.route, Route::Error);
  EXPECT_EQ(d.stage, bad.stage);
  EXPECT_NE(d.reason.find(bad.reason_part), std::string::npos) << d.reason;
  EXPECT_FALSE(d.reserved);  // a bad message never takes an id
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RouterBadInputTest,
    ::testing::Values(
        BadInput{"empty", "", stage::kDecode, "empty value"},
        BadInput{"not_json", "hello", stage::kDecode, "not valid JSON at byte 0"},
        BadInput{"truncated", R"({"msg_id":"x","user_id":)", stage::kDecode, "not valid JSON"},
        BadInput{"trailing_garbage", R"({"a":1} x)", stage::kDecode, "not valid JSON"},
        BadInput{"array", "[1,2]", stage::kDecode, "top-level value is an array"},
        BadInput{"string", R"("x")", stage::kDecode, "top-level value is a string"},
        BadInput{"invalid_utf8", "{\"user_id\":\"\xff\xfe\"}", stage::kDecode, "not valid JSON"},
        BadInput{"bom", "\xef\xbb\xbf{}", stage::kDecode, "not valid JSON"},
        // Past the first eight-byte words of the ASCII check, and in its byte-wise tail.
        BadInput{"invalid_utf8_late", "{\"user_id\":\"u-123456789012345\",\"x\":\"\xc3\x28\"}",
                 stage::kDecode, "not valid JSON"},
        BadInput{"invalid_utf8_tail", "{\"user_id\":\"u\",\"x\":\"ab\xff\"}", stage::kDecode,
                 "not valid JSON"},
        BadInput{"huge_number", R"({"user_id":"u","n":1e400})", stage::kDecode, "not valid JSON"},
        BadInput{"nul_in_string", std::string("{\"user_id\":\"u\0v\"}", 17), stage::kDecode,
                 "NUL byte"},
        BadInput{"nul_after", std::string("{\"user_id\":\"u\"}\0", 16), stage::kDecode, "NUL byte"},
        BadInput{"duplicate_member", R"({"user_id":"a","user_id":"b"})", stage::kDecode,
                 "member /user_id is written twice"},
        BadInput{"nested_duplicate", R"({"user_id":"a","data":[{"x/y":1,"x/y":2}]})",
                 stage::kDecode, "member /data/0/x~1y is written twice"},
        BadInput{"missing_key", R"({"msg_id":"m"})", stage::kKey, "at /user_id: missing key"},
        BadInput{"empty_key", R"({"user_id":""})", stage::kKey, "empty string"},
        BadInput{"object_key", R"({"user_id":{}})", stage::kKey, "is an object"},
        BadInput{"null_key", R"({"user_id":null})", stage::kKey, "is null"},
        BadInput{"missing_id", R"({"user_id":"u"})", stage::kId, "at /msg_id: missing message id"},
        BadInput{"bool_id", R"({"user_id":"u","msg_id":true})", stage::kId, "a boolean"},
        BadInput{"schema", R"({"user_id":"u","msg_id":"m","type":"user.updated","ts":1})",
                 stage::kSchema, "at /msg_id"},
        BadInput{"oversized", "{\"user_id\":\"" + std::string(5000, 'a') + "\"}", stage::kSize,
                 "over max_message_bytes (4096)"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(RouterTest, TombstoneIsAnErrorNotACrash) {
  build(userEvents());
  Decision d;
  router_->route(nullptr, 0, d);
  EXPECT_EQ(d.route, Route::Error);
  EXPECT_NE(d.reason.find("tombstone"), std::string::npos);
}

TEST_F(RouterTest, DeepNestingIsAnErrorNotAStackOverflow) {
  std::string deep =
      "{\"user_id\":\"u\",\"x\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  auto spec = userEvents();
  spec.max_message_bytes = 1 << 20;
  build(spec);
  Decision d = route(deep);
  EXPECT_EQ(d.route, Route::Error);
  EXPECT_EQ(d.stage, stage::kDecode);
  EXPECT_NE(d.reason.find("nested deeper than 128 levels"), std::string::npos) << d.reason;
}

TEST_F(RouterTest, DuplicatesInLargeObjectsAreFoundWithoutQuadraticCost) {
  auto spec = userEvents();
  spec.schema = {};
  spec.dedup.reset();
  spec.max_message_bytes = 4 << 20;
  build(spec);
  std::string value = "{\"user_id\":\"u\"";
  for (int i = 0; i < 200000; ++i) value += ",\"k" + std::to_string(i) + "\":1";
  Decision d = route(value + "}");
  EXPECT_EQ(d.route, Route::Output) << d.reason;
  d = route(value + ",\"k123456\":2}");
  EXPECT_EQ(d.route, Route::Error);
  EXPECT_NE(d.reason.find("member /k123456 is written twice"), std::string::npos) << d.reason;
}

TEST_F(RouterTest, NestingLimitIgnoresBracketsInStrings) {
  auto spec = userEvents();
  spec.schema = {};
  spec.dedup.reset();
  build(spec);
  std::string value = "{\"user_id\":\"u\",\"text\":\"" + std::string(500, '[') + "\\\"\"}";
  Decision d = route(value);
  EXPECT_EQ(d.route, Route::Output) << d.reason;
}

TEST_F(RouterTest, NumericKeyIsItsJsonText) {
  auto spec = userEvents();
  spec.schema = {};
  spec.dedup.reset();
  build(spec);
  Decision d = route(R"({"user_id":12345})");
  EXPECT_EQ(d.route, Route::Output);
  EXPECT_EQ(d.output_key, "12345");
}

TEST_F(RouterTest, OutputKeyMayDifferFromOrderingKey) {
  auto spec = userEvents();
  spec.schema = {};
  spec.dedup.reset();
  spec.output.key_pointer = "/account/id";
  build(spec);
  Decision d = route(R"({"user_id":"u","account":{"id":"acc-9"}})");
  EXPECT_EQ(d.output_key, "acc-9");
  EXPECT_EQ(route(R"({"user_id":"u"})").stage, stage::kKey);
}

class PerTypeRouterTest : public RouterTest {
 protected:
  config::PipelineSpec payments() {
    config::PipelineSpec spec;
    spec.name = "payments";
    spec.key_pointer = "/account_id";
    spec.schema.type_field = "/type";
    spec.schema.types = {{"payment.authorized", sourceDir() / "schemas/payments/authorized.json"},
                         {"payment.refunded", sourceDir() / "schemas/payments/refunded.json"}};
    spec.dedup = config::DedupSpec{"/msg_id", "", config::DedupSpec::OnDuplicate::Audit};
    return spec;
  }
};

TEST_F(PerTypeRouterTest, EachTypeHasItsSchema) {
  build(payments());
  EXPECT_EQ(route(R"({"msg_id":"1","account_id":"a","type":"payment.authorized","amount":5,)"
                  R"("currency":"EUR"})")
                .route,
            Route::Output);
  Decision refund = route(
      R"({"msg_id":"2","account_id":"a","type":"payment.refunded","amount":5,"currency":"EUR"})");
  EXPECT_EQ(refund.route, Route::Error);
  EXPECT_EQ(refund.stage, stage::kSchema);
  EXPECT_NE(refund.reason.find("refund_of"), std::string::npos) << refund.reason;
}

TEST_F(PerTypeRouterTest, UnknownTypeIsAnErrorOrPasses) {
  auto spec = payments();
  build(spec);
  Decision d = route(R"({"msg_id":"1","account_id":"a","type":"payment.exploded"})");
  EXPECT_EQ(d.route, Route::Error);
  EXPECT_EQ(d.stage, stage::kType);
  EXPECT_NE(d.reason.find("unknown event type \"payment.exploded\""), std::string::npos);

  spec.schema.unknown_type = config::SchemaSpec::UnknownType::Pass;
  build(spec);
  EXPECT_EQ(route(R"({"msg_id":"9","account_id":"a","type":"payment.exploded"})").route,
            Route::Output);
}

TEST(RouterBuildTest, MissingSchemaFileIsAnErrorNamingIt) {
  auto spec = userEvents();
  spec.schema.file = "/nonexistent/schema.json";
  auto built = Router::build(spec);
  ASSERT_TRUE(std::holds_alternative<std::string>(built));
  EXPECT_NE(std::get<std::string>(built).find("/nonexistent/schema.json"), std::string::npos);
}

}  // namespace
}  // namespace kpipe::pipeline
