// libFuzzer target: one message value through the pipeline's stages (pipeline::Router): size,
// decode, key, id, event type, schema; then the duplicate path.
//
// The routers are built once, as the daemon builds them: config/kpipe.yaml of the repository is
// loaded with config::loadConfig and Router::build compiles each pipeline's schemas
// (user-events: key /user_id, id /msg_id, schemas/user-event.json; payments: per-type schemas).
// Every input is routed through each of them; an empty input is a tombstone (null value). The
// Kafka key is not an input: route() never reads it (the worker passes it through).
//
// Invariants: route() never throws; a message goes to the output (with its key, and its id when
// dedup is on) or to the error topic with a stage and a reason; routing does not depend on the
// message routed before (the router reuses its buffers): the same value routed again, after
// another message, gets the same decision.

#include "daemon/config/loader.h"
#include "daemon/pipeline/router.h"

#include "tests/fuzz/fuzz_util.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

using namespace kpipe;

std::vector<std::unique_ptr<pipeline::Router>> buildRouters() {
  const auto file = fuzz::sourceDir() / "config" / "kpipe.yaml";
  const config::LoadResult loaded =
      config::loadConfig(file, [](std::string_view) { return std::nullopt; });
  if (!loaded.ok()) {
    fuzz::fail(file.string() + " does not load: " + loaded.errors.front().str());
  }
  std::vector<std::unique_ptr<pipeline::Router>> routers;
  for (const config::PipelineSpec& spec : loaded.config->pipelines) {
    auto built = pipeline::Router::build(spec);
    if (auto* error = std::get_if<std::string>(&built)) fuzz::fail(*error);
    routers.push_back(std::move(std::get<std::unique_ptr<pipeline::Router>>(built)));
  }
  if (routers.empty()) fuzz::fail(file.string() + " has no pipelines");
  return routers;
}

// A valid user event (and a payment of an unknown type): routed between two routings of the
// input, it leaves the router's buffers in another state.
constexpr std::string_view kOther =
    R"({"msg_id":"6f1c8f9e-8a43-4c1e-9a6d-2b5b0e4d7c11","user_id":"u-1","account_id":"a-1",)"
    R"("type":"user.updated","ts":1700000000000,"data":{"plan":"pro","email":"a@example.com"}})";

void check(const pipeline::Router& router, const pipeline::Decision& d) {
  const std::string& name = router.spec().name;
  switch (d.route) {
    case pipeline::Route::Output:
      if (!d.has_key) fuzz::fail(name + ": output without a key");
      if (router.spec().dedup && d.id.empty()) fuzz::fail(name + ": output without an id");
      if (!d.reason.empty() || !d.stage.empty()) fuzz::fail(name + ": output with a reason");
      break;
    case pipeline::Route::Error:
      if (d.stage.empty() || d.reason.empty()) {
        fuzz::fail(name + ": error without a stage or a reason");
      }
      if (d.error_class != pipeline::error_class::kNonBlocking) {
        fuzz::fail(name + ": a bad message is not a non-blocking error");
      }
      break;
    case pipeline::Route::Audit:
    case pipeline::Route::Drop:
      fuzz::fail(name + ": route() audited or dropped a message by itself");
  }
}

bool same(const pipeline::Decision& a, const pipeline::Decision& b) {
  return a.route == b.route && a.stage == b.stage && a.reason == b.reason &&
         a.output_key == b.output_key && a.key_hash == b.key_hash && a.has_key == b.has_key &&
         a.id == b.id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::unique_ptr<pipeline::Router>> routers = buildRouters();
  // libFuzzer's buffer is exactly `size` bytes: reading past the value is an ASan report.
  const char* value = size == 0 ? nullptr : reinterpret_cast<const char*>(data);
  pipeline::Decision first;
  pipeline::Decision other;
  pipeline::Decision again;
  for (const auto& router : routers) {
    router->route(value, size, first);
    check(*router, first);
    router->route(kOther.data(), kOther.size(), other);
    check(*router, other);
    router->route(value, size, again);
    if (!same(first, again)) {
      fuzz::fail(router->spec().name + ": routed differently the second time: \"" + first.reason +
                 "\" then \"" + again.reason + "\"");
    }
    if (first.route == pipeline::Route::Output && router->spec().dedup) {
      router->markDuplicate(first, dedup::ReserveResult::Done);
      if (first.route == pipeline::Route::Output || first.reason.empty()) {
        fuzz::fail(router->spec().name + ": a duplicate went to the output");
      }
    }
  }
  return 0;
}
