#include "daemon/app/supervisor.h"

#include "daemon/dedup/factory.h"
#include "daemon/observe/log.h"
#include "daemon/sinks/http_sink.h"

#include <boost/asio/post.hpp>

#include <set>
#include <utility>

namespace kpipe::app {
namespace log = observe::log;

namespace {

std::set<std::string> topicsOf(const config::PipelineSpec& p) {
  std::set<std::string> topics{p.input.topic, p.errors.topic, p.errors.audit_topic};
  if (!p.output.topic.empty()) topics.insert(p.output.topic);
  return topics;
}

}  // namespace

Supervisor::Supervisor(boost::asio::io_context& io, observe::Metrics& metrics,
                       kafka::EmbeddedBroker* embedded, std::string bootstrap)
    : io_(io), metrics_(metrics), embedded_(embedded), bootstrap_(std::move(bootstrap)) {}

Supervisor::~Supervisor() {
  pipelines_.clear();  // workers before the stores they use
  stores_.clear();
}

pipeline::WorkerOptions Supervisor::workerOptions(const config::Config& config) const {
  pipeline::WorkerOptions options;
  options.bootstrap = bootstrap_;
  options.properties = config.kafka.properties;
  options.consumer_properties = config.kafka.consumer_properties;
  options.producer_properties = config.kafka.producer_properties;
  options.drain_timeout = config.drain_timeout;
  return options;
}

std::variant<std::shared_ptr<dedup::Store>, std::string> Supervisor::storeFor(
    const config::Config& config, const config::PipelineSpec& p) {
  const std::string& name = p.dedup->store;  // "" = a private memory store
  config::StoreSpec spec;
  spec.name = "memory";
  if (!name.empty()) spec = config.stores.at(name);
  if (auto it = stores_.find(name); it != stores_.end()) {
    if (it->second.fingerprint == spec.fingerprint) return it->second.store;
    // Changed: its pipelines have stopped (reload.h counts them changed), and with them their
    // use of it. Closed before the new one opens: LMDB allows one environment per file.
    stores_.erase(it);
  }
  auto made = dedup::makeStore(spec, &metrics_);
  if (auto* error = std::get_if<std::string>(&made)) return "store " + spec.name + ": " + *error;
  std::shared_ptr<dedup::Store> store = std::move(std::get<std::unique_ptr<dedup::Store>>(made));
  const std::string where = spec.type == config::StoreType::Redis  ? spec.redis.display
                            : spec.type == config::StoreType::Lmdb ? spec.path.string()
                                                                   : "in process";
  log::info("dedup store ready",
            {{"store", spec.name}, {"type", config::storeTypeName(spec.type)}, {"at", where}});
  stores_[name] = Store{spec.fingerprint, store};
  return store;
}

std::variant<Supervisor::Running, std::string> Supervisor::build(const config::Config& config,
                                                                 const config::PipelineSpec& p) {
  if (embedded_ != nullptr) {
    for (const auto& topic : topicsOf(p)) {
      if (auto error =
              embedded_->createTopic(topic, config.kafka.embedded_broker.default_partitions)) {
        return "embedded broker: " + *error;
      }
    }
  }
  Running running;
  if (p.dedup) {
    auto store = storeFor(config, p);
    if (auto* error = std::get_if<std::string>(&store)) return *error;
    running.store = std::get<std::shared_ptr<dedup::Store>>(store);
  }
  std::unique_ptr<sinks::Sink> sink;
  if (p.output.http) {
    auto http = sinks::HttpSink::create(io_, *p.output.http);
    if (auto* error = std::get_if<std::string>(&http)) return *error;
    sink = std::move(std::get<std::unique_ptr<sinks::HttpSink>>(http));
  }
  auto created = pipeline::Worker::create(io_, p, workerOptions(config), running.store.get(),
                                          std::move(sink), metrics_);
  if (auto* error = std::get_if<std::string>(&created)) return *error;
  running.worker = std::move(std::get<std::unique_ptr<pipeline::Worker>>(created));
  return running;
}

std::optional<std::string> Supervisor::start(LoadedConfig config) {
  running_ = std::move(config);
  // Every pipeline is built before anything starts: a bad one starts nothing.
  for (const auto& p : running_.config.pipelines) {
    auto built = build(running_.config, p);
    if (auto* error = std::get_if<std::string>(&built)) {
      pipelines_.clear();
      return "pipeline " + p.name + ": " + *error;
    }
    pipelines_[p.name] = std::move(std::get<Running>(built));
  }
  for (auto& [name, running] : pipelines_) running.worker->start();
  return std::nullopt;
}

void Supervisor::retire(const std::vector<std::string>& names, std::function<void()> done) {
  auto remaining = std::make_shared<size_t>(0);
  auto finished = std::make_shared<std::function<void()>>(std::move(done));
  std::vector<pipeline::Worker*> stopping;
  for (const auto& name : names) {
    failed_.erase(name);
    auto it = pipelines_.find(name);
    if (it == pipelines_.end()) continue;
    ++*remaining;
    stopping.push_back(it->second.worker.get());
  }
  if (*remaining == 0) {
    boost::asio::post(io_, [finished] { (*finished)(); });
    return;
  }
  for (auto* worker : stopping) {
    const std::string name = worker->name();
    worker->stop([this, name, remaining, finished] {
      // Destroyed before anything of the same name starts: a worker's metrics carry the
      // pipeline's name, and its destructor removes them.
      pipelines_.erase(name);
      if (--*remaining == 0) (*finished)();
    });
  }
}

void Supervisor::apply(LoadedConfig next, const ReloadPlan& plan, ApplyDone done) {
  applying_ = true;
  auto shared_next = std::make_shared<LoadedConfig>(std::move(next));
  const config::Config& old_config = running_.config;
  const config::Config& new_config = shared_next->config;
  auto specOf = [](const config::Config& config, const std::string& name) {
    for (const auto& p : config.pipelines) {
      if (p.name == name) return &p;
    }
    return static_cast<const config::PipelineSpec*>(nullptr);
  };
  // A changed pipeline whose consumer side and dedup store stay the same changes in place:
  // no rebalance. The others (and removed ones) stop; they, and new ones, start afterwards.
  std::vector<std::string> leaving = plan.removed;
  std::vector<std::string> in_place;
  for (const auto& name : plan.changed) {
    auto it = pipelines_.find(name);
    const config::PipelineSpec* before = specOf(old_config, name);
    const config::PipelineSpec* after = specOf(new_config, name);
    const bool eligible =
        it != pipelines_.end() && before != nullptr && after != nullptr &&
        old_config.kafka_fingerprint == new_config.kafka_fingerprint &&
        storeFingerprint(old_config, *before) == storeFingerprint(new_config, *after) &&
        it->second.worker->canReconfigure(*after, workerOptions(new_config));
    (eligible ? in_place : leaving).push_back(name);
  }
  auto errors = std::make_shared<std::vector<std::string>>();
  auto restart = std::make_shared<std::set<std::string>>(plan.added.begin(), plan.added.end());
  for (const auto& name : leaving) {
    if (specOf(new_config, name) != nullptr) restart->insert(name);
  }
  auto remaining = std::make_shared<size_t>(in_place.size() + 1);
  auto finished = [this, shared_next, errors, restart, remaining, done = std::move(done)] {
    if (--*remaining > 0) return;
    running_ = std::move(*shared_next);
    // Stores no pipeline names any more go now; changed ones are replaced in storeFor().
    std::set<std::string> named;
    for (const auto& p : running_.config.pipelines) {
      if (p.dedup) named.insert(p.dedup->store);
    }
    std::erase_if(stores_, [&](const auto& entry) { return !named.contains(entry.first); });
    // Pipelines that failed to start before get another chance, changed or not.
    for (const auto& [name, why] : failed_) restart->insert(name);
    std::erase_if(failed_, [&](const auto& entry) { return !restart->contains(entry.first); });
    for (const auto& p : running_.config.pipelines) {
      if (!restart->contains(p.name) || stop_after_apply_) continue;
      auto built = build(running_.config, p);
      if (auto* error = std::get_if<std::string>(&built)) {
        failed_[p.name] = *error;
        errors->push_back(p.where.str() + ": pipeline " + p.name + ": cannot start: " + *error);
        continue;
      }
      failed_.erase(p.name);
      Running& running = pipelines_[p.name] = std::move(std::get<Running>(built));
      running.worker->start();
    }
    applying_ = false;
    done(std::move(*errors));
    if (stop_after_apply_) stop(std::exchange(stop_after_apply_, nullptr));
  };
  // Shared: each in-place change and the retirement call it once.
  auto step = std::make_shared<std::function<void()>>(std::move(finished));
  for (const auto& name : in_place) {
    const config::PipelineSpec& spec = *specOf(new_config, name);
    Running& running = pipelines_.at(name);
    if (spec.dedup && !running.store) {  // dedup added, with the private memory store
      auto store = storeFor(new_config, spec);
      if (auto* error = std::get_if<std::string>(&store)) {
        errors->push_back(spec.where.str() + ": pipeline " + name + ": " + *error);
        boost::asio::post(io_, [step] { (*step)(); });
        continue;
      }
      running.store = std::get<std::shared_ptr<dedup::Store>>(store);
    }
    std::unique_ptr<sinks::Sink> sink;
    if (spec.output.http) {
      auto http = sinks::HttpSink::create(io_, *spec.output.http);
      if (auto* error = std::get_if<std::string>(&http)) {
        errors->push_back(spec.where.str() + ": pipeline " + name + ": " + *error);
        boost::asio::post(io_, [step] { (*step)(); });
        continue;
      }
      sink = std::move(std::get<std::unique_ptr<sinks::HttpSink>>(http));
    }
    running.worker->reconfigure(
        spec, workerOptions(new_config), running.store.get(), std::move(sink),
        [this, name, where = spec.where.str(), errors, restart, step](std::string error) {
          if (!error.empty()) {
            auto it = pipelines_.find(name);
            if (it != pipelines_.end() && it->second.worker->closed()) {
              pipelines_.erase(it);  // fell back to stopping: started anew below
              restart->insert(name);
            } else {
              errors->push_back(where + ": pipeline " + name +
                                ": not changed, the previous definition runs on: " + error);
            }
          }
          (*step)();
        });
  }
  retire(leaving, [step] { (*step)(); });
}

void Supervisor::stop(std::function<void()> done) {
  if (applying_) {
    // Pipelines are draining for the reload: stop once that is over (stopping a worker twice
    // would lose the first caller's callback).
    stop_after_apply_ = std::move(done);
    return;
  }
  std::vector<std::string> names;
  for (const auto& [name, running] : pipelines_) names.push_back(name);
  retire(names, std::move(done));
}

std::vector<pipeline::PipelineStatus> Supervisor::status() const {
  std::vector<pipeline::PipelineStatus> out;
  for (const auto& p : running_.config.pipelines) {
    if (auto it = pipelines_.find(p.name); it != pipelines_.end()) {
      out.push_back(it->second.worker->status());
    } else if (auto failed = failed_.find(p.name); failed != failed_.end()) {
      pipeline::PipelineStatus status;
      status.name = p.name;
      status.input_topic = p.input.topic;
      status.group = p.input.group;
      status.state = "failed";
      status.status = "error";
      status.why = failed->second;
      out.push_back(std::move(status));
    }
  }
  return out;
}

std::vector<std::string> Supervisor::healthErrors() const {
  std::vector<std::string> out;
  for (const auto& [name, running] : pipelines_) {
    if (!running.worker->healthError().empty()) {
      out.push_back(name + ": " + running.worker->healthError());
    }
  }
  for (const auto& [name, why] : failed_) out.push_back(name + ": not running: " + why);
  return out;
}

bool Supervisor::needsRestart() const {
  for (const auto& [name, running] : pipelines_) {
    if (!running.worker->healthError().empty()) return true;
  }
  return false;
}

std::vector<std::string> Supervisor::notReady() const {
  std::vector<std::string> out;
  for (const auto& [name, running] : pipelines_) {
    if (auto why = running.worker->readiness(); !why.empty()) out.push_back(name + ": " + why);
  }
  for (const auto& [name, why] : failed_) out.push_back(name + ": not running: " + why);
  return out;
}

}  // namespace kpipe::app
