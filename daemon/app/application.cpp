#include "daemon/app/application.h"

#include "daemon/app/config_watch.h"
#include "daemon/app/reload.h"
#include "daemon/app/schema_evolution.h"
#include "daemon/app/status_page.h"
#include "daemon/app/supervisor.h"
#include "daemon/app/systemd_notify.h"
#include "daemon/config/loader.h"
#include "daemon/kafka/embedded_broker.h"
#include "daemon/observe/http_server.h"
#include "daemon/observe/log.h"
#include "daemon/observe/metrics.h"
#include "daemon/version.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <thread>

namespace kpipe::app {
namespace log = observe::log;
namespace asio = boost::asio;

namespace {

using Clock = std::chrono::steady_clock;

int64_t wallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ",") + name;
  return out;
}

// The directories whose files make up the config: kpipe.yaml's, the pipelines directory, every
// schema directory and the directories of the secret files (*_file) it reads.
std::set<std::filesystem::path> configDirs(const LoadedConfig& loaded) {
  std::set<std::filesystem::path> dirs{loaded.config.base_dir, loaded.config.pipelines_dir};
  for (const auto& [file, bytes] : loaded.schema_files) dirs.insert(file.parent_path());
  // A rotated secret (*_file) reloads too: the fingerprints include the files' digests.
  for (const auto& file : loaded.config.secret_files) dirs.insert(file.parent_path());
  return dirs;
}

// Reloads: one at a time, each prepared (loaded and validated) on a thread of its own so that
// the pipelines never wait for file reads and schema compiles, then applied on the io thread.
// Triggers that arrive meanwhile are folded into one more reload after it.
class Reloader {
 public:
  Reloader(asio::io_context& io, Supervisor& supervisor, observe::Metrics& metrics,
           ConfigStatus& status, ConfigWatch* watch)
      : io_(io), supervisor_(supervisor), metrics_(metrics), status_(status), watch_(watch) {}
  ~Reloader() {
    if (thread_.joinable()) thread_.join();
  }

  void trigger(const char* cause, Clock::time_point since) {
    if (stopped_) return;
    if (busy_) {
      if (!again_) again_since_ = since;
      again_ = true;
      return;
    }
    busy_ = true;
    since_ = since;
    log::info("config reload", {{"cause", cause}, {"file", status_.file}});
    notifyReloading();
    if (thread_.joinable()) thread_.join();  // the previous one, long finished
    // The running config is only replaced by apply(), after this thread has ended.
    const LoadedConfig* running = &supervisor_.running();
    thread_ = std::thread([this, running, file = status_.file] {
      auto candidate = std::make_shared<Candidate>(prepare(file, running));
      asio::post(io_, [this, candidate] { onPrepared(std::move(*candidate)); });
    });
  }

  // No reload starts after this; one being applied finishes first (Supervisor::stop waits).
  void stop() { stopped_ = true; }

 private:
  void onPrepared(Candidate candidate) {
    if (stopped_) return finish();
    if (!candidate.loaded) {
      for (const auto& e : candidate.errors) {
        log::error("config reload refused: the previous config keeps running", {{"error", e}});
      }
      failed(std::move(candidate.errors));
      return finish();
    }
    LoadedConfig& next = *candidate.loaded;
    ReloadPlan plan = app::plan(supervisor_.running(), next);
    for (const auto& setting : plan.need_restart) {
      log::warn("config setting changed: applies at the next restart", {{"setting", setting}});
    }
    if (plan.log_changed) log::configure(next.config.log);
    status_.need_restart = plan.need_restart;
    supervisor_.apply(std::move(next), plan, [this, plan](std::vector<std::string> errors) {
      const double seconds = std::chrono::duration<double>(Clock::now() - since_).count();
      if (!errors.empty()) {
        for (const auto& e : errors)
          log::error("config reload: pipeline not running", {{"error", e}});
        failed(std::move(errors));
      } else {
        metrics_.config_reloads.Add({{"result", "success"}}).Increment();
        metrics_.config_reload_seconds.Add({}).Set(seconds);
        ++status_.reloads_succeeded;
        status_.last_result = "success";
        status_.last_errors.clear();
      }
      status_.last_at_ms = status_.loaded_at_ms = wallMillis();
      status_.last_seconds = seconds;
      log::info(plan.nothing() ? "config reloaded: no pipeline changed" : "config reloaded",
                {{"added", joined(plan.added)},
                 {"changed", joined(plan.changed)},
                 {"removed", joined(plan.removed)},
                 {"unchanged", static_cast<uint64_t>(plan.unchanged.size())},
                 {"seconds", seconds}});
      if (watch_ != nullptr) watch_->watch(configDirs(supervisor_.running()));
      finish();
    });
  }

  void failed(std::vector<std::string> errors) {
    metrics_.config_reloads.Add({{"result", "failure"}}).Increment();
    ++status_.reloads_failed;
    status_.last_result = "failure";
    status_.last_at_ms = wallMillis();
    status_.last_errors = std::move(errors);
  }

  void finish() {
    busy_ = false;
    if (!stopped_) notifyReady();
    if (again_ && !stopped_) {
      again_ = false;
      trigger("changed again during the reload", again_since_);
    }
  }

  asio::io_context& io_;
  Supervisor& supervisor_;
  observe::Metrics& metrics_;
  ConfigStatus& status_;
  ConfigWatch* watch_;
  std::thread thread_;
  bool busy_ = false, again_ = false, stopped_ = false;
  Clock::time_point since_, again_since_;
};

}  // namespace

int run(const std::string& config_file) {
  Candidate candidate = prepare(config_file, nullptr);
  if (!candidate.loaded) {
    for (const auto& e : candidate.errors) std::cerr << e << "\n";
    std::cerr << "kpipe: not started: " << candidate.errors.size() << " config error"
              << (candidate.errors.size() == 1 ? "" : "s") << "\n";
    return 1;
  }
  const config::Config& config = candidate.loaded->config;
  log::configure(config.log);
  asio::io_context io(1);
  observe::Metrics metrics;
  metrics.build_info.Add({{"version", kVersion}}).Set(1);
  // Both results exist from the start, so that rate() and alerts see the first failure.
  metrics.config_reloads.Add({{"result", "success"}});
  metrics.config_reloads.Add({{"result", "failure"}});

  std::unique_ptr<kafka::EmbeddedBroker> embedded;
  std::string bootstrap = config.kafka.bootstrap;
  if (config.kafka.embedded()) {
    auto started = kafka::EmbeddedBroker::start(config.kafka.embedded_broker.brokers);
    if (auto* error = std::get_if<std::string>(&started)) {
      log::error("cannot start the embedded broker", {{"error", *error}});
      return 1;
    }
    embedded = std::move(std::get<std::unique_ptr<kafka::EmbeddedBroker>>(started));
    bootstrap = embedded->bootstrap();
    log::warn("embedded broker started: in memory, for development only",
              {{"bootstrap", bootstrap}});
  }

  ConfigStatus config_status;
  config_status.file = config.file.string();
  config_status.loaded_at_ms = wallMillis();
  const config::HttpSpec http_spec = config.http;
  const bool watch_files = config.reload_watch;
  const auto debounce = config.reload_debounce;

  auto supervisor = std::make_unique<Supervisor>(io, metrics, embedded.get(), bootstrap);
  if (auto error = supervisor->start(std::move(*candidate.loaded))) {
    log::error("cannot start pipeline", {{"error", *error}});
    return 1;
  }
  const size_t pipeline_count = supervisor->running().config.pipelines.size();

  observe::HttpServer http(io);
  http.route("/metrics", [&metrics] {
    return observe::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                                 metrics.serialize()};
  });
  auto lines = [](const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += item + "\n";
    return out;
  };
  http.route("/healthz", [&supervisor, lines] {
    auto failures = supervisor->healthErrors();
    if (!failures.empty()) {
      return observe::HttpResponse{503, "text/plain; charset=utf-8", lines(failures)};
    }
    return observe::HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
  });
  // Readiness (Kubernetes readinessProbe): every pipeline is in its group and healthy.
  http.route("/readyz", [&supervisor, lines] {
    auto waiting = supervisor->notReady();
    if (!waiting.empty()) {
      return observe::HttpResponse{503, "text/plain; charset=utf-8", lines(waiting)};
    }
    return observe::HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
  });
  http.route("/status", [&supervisor, &config_status] {
    return observe::HttpResponse{200, "application/json",
                                 statusJson(supervisor->status(), config_status)};
  });
  http.route("/", [&supervisor, &config_status] {
    return observe::HttpResponse{200, "text/html; charset=utf-8",
                                 statusHtml(supervisor->status(), kVersion, config_status)};
  });
  if (http_spec.enabled) {
    if (auto error = http.start(http_spec.listen_address, http_spec.listen_port)) {
      log::error("http server", {{"error", *error}});
      return 1;
    }
    log::info("http server listening",
              {{"address", http_spec.listen_address}, {"port", static_cast<int>(http.port())}});
  }

  std::unique_ptr<Reloader> reloader;
  ConfigWatch watch(io, debounce, [&reloader](Clock::time_point first_change) {
    reloader->trigger("file change", first_change);
  });
  reloader = std::make_unique<Reloader>(io, *supervisor, metrics, config_status,
                                        watch_files ? &watch : nullptr);
  if (watch_files) {
    if (auto error = watch.watch(configDirs(supervisor->running()))) {
      log::warn("config files are not watched: reload with SIGHUP", {{"error", *error}});
    }
  }

  // The watchdog (systemd WatchdogSec): pinged from the io thread itself, so a wedged event
  // loop stops the pings and systemd restarts the daemon. So does a pipeline that cannot go on
  // without a restart (a fatal producer error: Worker::healthError); a pipeline a reload could
  // not start is a config problem a restart would not cure, and keeps the pings going.
  asio::steady_timer watchdog(io);
  std::function<void()> ping;
  if (auto interval = watchdogInterval()) {
    ping = [&watchdog, &ping, &supervisor, half = *interval / 2] {
      if (!supervisor->needsRestart()) notifyWatchdog();
      watchdog.expires_after(half);
      watchdog.async_wait([&ping](const boost::system::error_code& ec) {
        if (!ec) ping();
      });
    };
    ping();
  }

  log::info("kpipe running", {{"version", kVersion},
                              {"pipelines", static_cast<uint64_t>(pipeline_count)},
                              {"bootstrap", bootstrap}});
  notifyReady();

  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  bool stopping = false;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        signals.async_wait(on_signal);
        if (signal == SIGHUP) {
          reloader->trigger("SIGHUP", Clock::now());
          return;
        }
        if (stopping) {
          log::warn("second stop signal: exiting without draining", {{"signal", signal}});
          std::fflush(nullptr);
          std::_Exit(128 + signal);
        }
        stopping = true;
        log::info("stop signal: draining pipelines", {{"signal", signal}});
        notifyStopping();
        reloader->stop();
        http.stop();
        supervisor->stop([&] {
          signals.cancel();
          watchdog.cancel();
          io.stop();
        });
      };
  signals.async_wait(on_signal);
  io.run();
  reloader.reset();    // joins a reload still being prepared
  supervisor.reset();  // workers, then stores; before the embedded broker they talk to
  log::info("kpipe stopped");
  return 0;
}

int check(const std::string& config_file, const std::optional<std::string>& against) {
  auto loaded = config::loadConfig(config_file);
  std::vector<std::string> errors;
  for (const auto& e : loaded.errors) errors.push_back(e.str());
  if (loaded.ok()) {
    for (auto& line : validate(*loaded.config)) errors.push_back(std::move(line));
  }
  if (loaded.ok() && against) {
    // The old config as it was deployed: a directory holding kpipe.yaml, or that file itself.
    std::filesystem::path old_file(*against);
    if (std::filesystem::is_directory(old_file)) old_file /= "kpipe.yaml";
    auto previous = config::loadConfig(old_file);
    for (const auto& e : previous.errors) {
      errors.push_back("--against " + *against + ": " + e.str());
    }
    if (previous.ok()) {
      for (auto& line : checkSchemaEvolution(*previous.config, *loaded.config)) {
        errors.push_back(std::move(line));
      }
    }
  }
  for (const auto& e : errors) std::cerr << e << "\n";
  if (!errors.empty()) {
    std::cerr << config_file << ": " << errors.size() << " error" << (errors.size() == 1 ? "" : "s")
              << "\n";
    return 1;
  }
  std::cout << config_file << ": OK, " << loaded.config->pipelines.size() << " pipeline"
            << (loaded.config->pipelines.size() == 1 ? "" : "s") << "\n";
  return 0;
}

int broker(const BrokerOptions& options) {
  auto started = kafka::EmbeddedBroker::start(options.brokers);
  if (auto* error = std::get_if<std::string>(&started)) {
    std::cerr << "kpipe broker: " << *error << "\n";
    return 1;
  }
  auto& broker = std::get<std::unique_ptr<kafka::EmbeddedBroker>>(started);
  for (const auto& [name, partitions] : options.topics) {
    if (auto error =
            broker->createTopic(name, partitions > 0 ? partitions : options.default_partitions)) {
      std::cerr << "kpipe broker: " << *error << "\n";
      return 1;
    }
  }
  // Scripts read this line to find the broker.
  std::cout << "bootstrap: " << broker->bootstrap() << std::endl;
  std::cerr << "kpipe broker: embedded (in-memory, not durable) Kafka at " << broker->bootstrap()
            << "; stop with Ctrl-C\n";
  asio::io_context io(1);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
  // Fault injection for tests and experiments: one command per line on standard input, each
  // answered "ok" or "error: ..." on standard output (EmbeddedBroker::applyFault).
  asio::posix::stream_descriptor input(io);
  asio::streambuf lines;
  std::function<void()> read_command = [&] {
    asio::async_read_until(input, lines, '\n', [&](const boost::system::error_code& ec, size_t) {
      if (ec) return;  // end of input: no more commands, keep serving
      std::istream stream(&lines);
      std::string command;
      std::getline(stream, command);
      auto error = broker->applyFault(command);
      std::cout << (error ? "error: " + *error : std::string("ok")) << std::endl;
      read_command();
    });
  };
  boost::system::error_code ec;
  input.assign(::dup(STDIN_FILENO), ec);  // fails for files and /dev/null: no commands then
  if (!ec) read_command();
  io.run();
  return 0;
}

}  // namespace kpipe::app
