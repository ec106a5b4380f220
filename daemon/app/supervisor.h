#pragma once
// Runs the pipelines of a config and applies reloads to them as a diff (reload.h):
// unchanged pipelines keep running untouched (same consumer, no rebalance); changed and removed
// ones drain (in-flight work finishes and is committed, up to the drain timeout) and stop; then
// changed and new ones start. The dedup stores the pipelines name are opened once and shared;
// one whose definition changed is closed after its last pipeline stopped, then opened anew.
//
// Threading: every method runs on the io_context thread; callbacks are called there.

#include "daemon/app/reload.h"
#include "daemon/dedup/store.h"
#include "daemon/kafka/embedded_broker.h"
#include "daemon/observe/metrics.h"
#include "daemon/pipeline/worker.h"

#include <boost/asio/io_context.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kpipe::app {

class Supervisor {
 public:
  // `embedded`: the embedded broker when kafka.bootstrap is "embedded" (topics of new pipelines
  // are created there), else null. `bootstrap`: the address the clients use.
  Supervisor(boost::asio::io_context& io, observe::Metrics& metrics,
             kafka::EmbeddedBroker* embedded, std::string bootstrap);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Builds and starts every pipeline of `config`. On an error nothing runs; returns it.
  std::optional<std::string> start(LoadedConfig config);

  // Applies `next` (validated by prepare()) as `plan` says. `done` gets the errors of pipelines
  // that could not start (the others run; those show in failures() until a later reload).
  using ApplyDone = std::function<void(std::vector<std::string> errors)>;
  void apply(LoadedConfig next, const ReloadPlan& plan, ApplyDone done);
  bool applying() const { return applying_; }

  // Drains and stops every pipeline, then calls `done`.
  void stop(std::function<void()> done);

  const LoadedConfig& running() const { return running_; }
  std::vector<pipeline::PipelineStatus> status() const;
  // "name: why" per pipeline that cannot make progress (health) or take traffic (readiness).
  std::vector<std::string> healthErrors() const;
  // A running pipeline cannot make progress until the process restarts (its healthError).
  bool needsRestart() const;
  std::vector<std::string> notReady() const;

 private:
  struct Store {
    std::string fingerprint;
    std::shared_ptr<dedup::Store> store;
  };
  struct Running {
    std::shared_ptr<dedup::Store> store;  // keeps it open while the worker uses it
    std::unique_ptr<pipeline::Worker> worker;
  };

  pipeline::WorkerOptions workerOptions(const config::Config& config) const;
  // Returns the store `p` names (opening it if needed), or why it cannot.
  std::variant<std::shared_ptr<dedup::Store>, std::string> storeFor(const config::Config& config,
                                                                    const config::PipelineSpec& p);
  // Creates its topics (embedded broker), opens its store, builds its sink and worker; the
  // caller starts the worker.
  std::variant<Running, std::string> build(const config::Config& config,
                                           const config::PipelineSpec& p);
  // Drains and destroys the named pipelines, then calls `done`.
  void retire(const std::vector<std::string>& names, std::function<void()> done);

  boost::asio::io_context& io_;
  observe::Metrics& metrics_;
  kafka::EmbeddedBroker* embedded_;
  std::string bootstrap_;
  LoadedConfig running_;
  // Declared before pipelines_: workers go first, then the stores they use.
  std::map<std::string, Store> stores_;  // by name; "" = the private memory store
  std::map<std::string, Running> pipelines_;
  std::map<std::string, std::string> failed_;  // pipeline -> why it is not running
  bool applying_ = false;
  std::function<void()> stop_after_apply_;  // a stop asked for while a reload applied
};

}  // namespace kpipe::app
