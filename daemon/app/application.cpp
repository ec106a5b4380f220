#include "daemon/app/application.h"

#include "daemon/app/schema_evolution.h"
#include "daemon/app/status_page.h"
#include "daemon/config/loader.h"
#include "daemon/dedup/factory.h"
#include "daemon/kafka/embedded_broker.h"
#include "daemon/kafka/handle.h"
#include "daemon/observe/http_server.h"
#include "daemon/observe/log.h"
#include "daemon/observe/metrics.h"
#include "daemon/pipeline/router.h"
#include "daemon/pipeline/worker.h"
#include "daemon/sinks/http_sink.h"
#include "daemon/version.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/streambuf.hpp>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>

namespace kpipe::app {
namespace log = observe::log;
namespace asio = boost::asio;

namespace {

std::set<std::string> topicsOf(const config::PipelineSpec& p) {
  std::set<std::string> topics{p.input.topic, p.errors.topic, p.errors.audit_topic};
  if (!p.output.topic.empty()) topics.insert(p.output.topic);
  return topics;
}

// The dedup stores the pipelines name, opened once and shared (each pipeline gets a session
// of its own); a pipeline with dedup but no store gets a private memory store.
class Stores {
 public:
  std::optional<std::string> open(const config::Config& config, observe::Metrics& metrics) {
    for (const auto& p : config.pipelines) {
      if (!p.dedup || by_name_.contains(p.dedup->store)) continue;
      config::StoreSpec spec;
      spec.name = "memory";
      if (!p.dedup->store.empty()) spec = config.stores.at(p.dedup->store);
      auto made = dedup::makeStore(spec, &metrics);
      if (auto* error = std::get_if<std::string>(&made))
        return "store " + spec.name + ": " + *error;
      by_name_[p.dedup->store] = std::move(std::get<std::unique_ptr<dedup::Store>>(made));
      const char* type = spec.type == config::StoreType::Redis  ? "redis"
                         : spec.type == config::StoreType::Lmdb ? "lmdb"
                                                                : "memory";
      std::string where = spec.type == config::StoreType::Redis  ? spec.redis.display
                          : spec.type == config::StoreType::Lmdb ? spec.path.string()
                                                                 : "in process";
      log::info("dedup store ready", {{"store", spec.name}, {"type", type}, {"at", where}});
    }
    return std::nullopt;
  }
  dedup::Store* forPipeline(const config::PipelineSpec& p) {
    return p.dedup ? by_name_.at(p.dedup->store).get() : nullptr;
  }

 private:
  std::map<std::string, std::unique_ptr<dedup::Store>> by_name_;  // "" = the private default
};

}  // namespace

int run(const config::Config& config) {
  log::configure(config.log);
  asio::io_context io(1);
  observe::Metrics metrics;
  metrics.build_info.Add({{"version", kVersion}}).Set(1);

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
    for (const auto& p : config.pipelines) {
      for (const auto& topic : topicsOf(p)) {
        if (auto error =
                embedded->createTopic(topic, config.kafka.embedded_broker.default_partitions)) {
          log::error("embedded broker", {{"error", *error}});
          return 1;
        }
      }
    }
    log::warn("embedded broker started: in memory, for development only",
              {{"bootstrap", bootstrap}});
  }

  // Every pipeline is built before anything starts: a bad one starts nothing.
  pipeline::WorkerOptions options;
  options.bootstrap = bootstrap;
  options.properties = config.kafka.properties;
  options.consumer_properties = config.kafka.consumer_properties;
  options.producer_properties = config.kafka.producer_properties;
  // Declared before the workers, which use them: they go after the workers.
  Stores stores;
  if (auto error = stores.open(config, metrics)) {
    log::error("cannot open dedup store", {{"error", *error}});
    return 1;
  }
  std::vector<std::unique_ptr<pipeline::Worker>> workers;
  for (const auto& p : config.pipelines) {
    std::unique_ptr<sinks::Sink> sink;
    if (p.output.http) {
      auto http = sinks::HttpSink::create(io, *p.output.http);
      if (auto* error = std::get_if<std::string>(&http)) {
        log::error("cannot start pipeline", {{"pipeline", p.name}, {"error", *error}});
        return 1;
      }
      sink = std::move(std::get<std::unique_ptr<sinks::HttpSink>>(http));
    }
    auto created =
        pipeline::Worker::create(io, p, options, stores.forPipeline(p), std::move(sink), metrics);
    if (auto* error = std::get_if<std::string>(&created)) {
      log::error("cannot start pipeline", {{"pipeline", p.name}, {"error", *error}});
      return 1;
    }
    workers.push_back(std::move(std::get<std::unique_ptr<pipeline::Worker>>(created)));
  }

  observe::HttpServer http(io);
  http.route("/metrics", [&metrics] {
    return observe::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                                 metrics.serialize()};
  });
  http.route("/healthz", [&workers] {
    std::string failures;
    for (const auto& w : workers) {
      if (!w->healthError().empty()) failures += w->name() + ": " + w->healthError() + "\n";
    }
    if (!failures.empty()) return observe::HttpResponse{503, "text/plain; charset=utf-8", failures};
    return observe::HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
  });
  // Readiness (Kubernetes readinessProbe): every pipeline is in its group and healthy.
  http.route("/readyz", [&workers] {
    std::string waiting;
    for (const auto& w : workers) {
      if (auto why = w->readiness(); !why.empty()) waiting += w->name() + ": " + why + "\n";
    }
    if (!waiting.empty()) return observe::HttpResponse{503, "text/plain; charset=utf-8", waiting};
    return observe::HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
  });
  auto snapshot = [&workers] {
    std::vector<pipeline::PipelineStatus> pipelines;
    for (const auto& w : workers) pipelines.push_back(w->status());
    return pipelines;
  };
  http.route("/status", [snapshot] {
    return observe::HttpResponse{200, "application/json", statusJson(snapshot())};
  });
  http.route("/", [snapshot] {
    return observe::HttpResponse{200, "text/html; charset=utf-8", statusHtml(snapshot(), kVersion)};
  });
  if (config.http.enabled) {
    if (auto error = http.start(config.http.listen_address, config.http.listen_port)) {
      log::error("http server", {{"error", *error}});
      return 1;
    }
    log::info("http server listening",
              {{"address", config.http.listen_address}, {"port", static_cast<int>(http.port())}});
  }

  for (auto& w : workers) w->start();
  log::info("kpipe running", {{"version", kVersion},
                              {"pipelines", static_cast<uint64_t>(workers.size())},
                              {"bootstrap", bootstrap}});

  asio::signal_set signals(io, SIGINT, SIGTERM);
  size_t running = workers.size();
  bool stopping = false;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        if (stopping) {
          log::warn("second stop signal: exiting without draining", {{"signal", signal}});
          std::fflush(nullptr);
          std::_Exit(128 + signal);
        }
        stopping = true;
        log::info("stop signal: draining pipelines", {{"signal", signal}});
        signals.async_wait(on_signal);
        http.stop();
        if (running == 0) {
          io.stop();
          return;
        }
        for (auto& w : workers) {
          w->stop([&] {
            if (--running == 0) {
              signals.cancel();
              io.stop();
            }
          });
        }
      };
  signals.async_wait(on_signal);
  io.run();
  workers.clear();  // before the embedded broker they talk to
  log::info("kpipe stopped");
  return 0;
}

int check(const std::string& config_file, const std::optional<std::string>& against) {
  auto loaded = config::loadConfig(config_file);
  std::vector<std::string> errors;
  for (const auto& e : loaded.errors) errors.push_back(e.str());
  if (loaded.ok()) {
    const auto& kafka = loaded.config->kafka;
    // librdkafka knows its properties: ask it, as `run` would, for each kind of client.
    for (const auto* specific : {&kafka.consumer_properties, &kafka.producer_properties}) {
      auto conf = kafka::makeConf({&kafka.properties, specific});
      if (auto* error = std::get_if<std::string>(&conf)) {
        errors.push_back(loaded.config->file.string() + ": " + *error);
      }
    }
    for (const auto& p : loaded.config->pipelines) {
      // Compiles the schemas exactly as `run` would.
      auto router = pipeline::Router::build(p);
      if (auto* error = std::get_if<std::string>(&router)) {
        errors.push_back(p.where.str() + ": pipeline " + p.name + ": " + *error);
      }
      // Builds the HTTP sink as `run` would (URL, method, headers, CA file); connects nowhere.
      if (p.output.http) {
        asio::io_context io;
        auto sink = sinks::HttpSink::create(io, *p.output.http);
        if (auto* error = std::get_if<std::string>(&sink)) {
          errors.push_back(p.where.str() + ": pipeline " + p.name + ": " + *error);
        }
      }
    }
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
