#include "daemon/plan/measure.h"

#include "daemon/app/reload.h"
#include "daemon/config/loader.h"
#include "daemon/config/redact.h"
#include "daemon/config/spec.h"
#include "daemon/dedup/factory.h"
#include "daemon/kafka/embedded_broker.h"
#include "daemon/kafka/handle.h"
#include "daemon/observe/log.h"
#include "daemon/observe/metrics.h"
#include "daemon/pipeline/worker.h"
#include "daemon/plan/samples.h"
#include "daemon/sinks/http_sink.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <thread>

namespace kpipe::plan {
namespace {

namespace fs = std::filesystem;
namespace log = observe::log;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// What the measurement's topics, group and dedup namespace are called: "plan-measure.NAME".
constexpr std::string_view kPrefix = "plan-measure.";
// Output, error and audit topics: as many partitions as the embedded broker's default.
constexpr int kOutputPartitions = 4;
// The most kept ahead of the worker in the input topic: under the ~5 MB the embedded broker
// keeps per partition (it drops older data silently). The least: enough to start with.
constexpr double kBacklogBytes = 3 << 20;
constexpr double kMinBacklog = 100;
// The worker's rate, for the backlog, is taken over this much of the recent past.
constexpr auto kRateWindow = 250ms;
constexpr auto kJoinTimeout = 30s;
constexpr const char* kFetchWaitMs = "2";
constexpr auto kTick = 20ms;
// Paced feeding runs this long before W is measured: the queues settle to the new load.
constexpr auto kSettle = 300ms;
// The configured store (--use-store): the measurement's ids and reservations expire soon (they
// only matter while it runs).
constexpr auto kStoreTtl = std::chrono::minutes(10);
// Bytes a record takes in the embedded broker's log beyond its key, value and headers
// (record and batch headers, offsets): the backlog is bounded with them counted.
constexpr double kRecordOverhead = 64;

// Settings that connect to the user's cluster, or name the user's group: the embedded broker is
// plaintext on loopback and the measurement has a group of its own. The rest (batching,
// compression, fetch sizes) is kept: it is part of what is measured.
bool connectionSetting(std::string_view name) {
  static const std::set<std::string_view> kNames = {
      "bootstrap.servers", "metadata.broker.list", "security.protocol", "client.dns.lookup",
      "group.id",          "group.instance.id",    "transactional.id",
  };
  return kNames.contains(name) || name.starts_with("ssl.") || name.starts_with("sasl.") ||
         name.starts_with("ssl_") || name == "enable.ssl.certificate.verification";
}

kafka::Properties forEmbedded(const kafka::Properties& in, std::set<std::string>& dropped) {
  kafka::Properties out;
  for (const auto& [name, value] : in) {
    if (connectionSetting(name)) {
      dropped.insert(name);
    } else {
      out.emplace(name, value);
    }
  }
  return out;
}

// The worker's counters and W histogram at one moment.
struct Snapshot {
  Clock::time_point at;
  // The io thread's (the worker's) scheduler times: on a CPU, and runnable but waiting for one.
  double run_seconds = 0, wait_seconds = 0;
  bool scheduler = false;     // the two above were read
  double broker_seconds = 0;  // on a CPU: the embedded broker's thread (librdkafka's "rdk:mock")
  uint64_t ok = 0, invalid = 0, duplicate = 0, error = 0, retries = 0;
  uint64_t count = 0;
  double sum = 0;
  std::vector<std::pair<double, uint64_t>> buckets;  // upper bound, cumulative count
  uint64_t done() const { return ok + invalid + duplicate + error; }
};

// kpipe_messages_total and kpipe_processing_seconds of the measured pipeline. Counters are
// read from any thread (prometheus-cpp's are atomic); snapshots on the io thread.
class Readings {
 public:
  Readings(observe::Metrics& metrics, const std::string& pipeline)
      : ok_(metrics.messages.Add({{"pipeline", pipeline}, {"outcome", "ok"}})),
        invalid_(metrics.messages.Add({{"pipeline", pipeline}, {"outcome", "invalid"}})),
        duplicate_(metrics.messages.Add({{"pipeline", pipeline}, {"outcome", "duplicate"}})),
        error_(metrics.messages.Add({{"pipeline", pipeline}, {"outcome", "error"}})),
        retries_(metrics.retries.Add({{"pipeline", pipeline}})),
        processing_(metrics.processing.Add({{"pipeline", pipeline}}, observe::kLatencyBuckets)) {}

  uint64_t done() const {
    return static_cast<uint64_t>(ok_.Value() + invalid_.Value() + duplicate_.Value() +
                                 error_.Value());
  }

  Snapshot snapshot() const {
    Snapshot s;
    s.at = Clock::now();
    // Called on the io thread: /proc/thread-self is the worker's thread.
    std::ifstream schedstat("/proc/thread-self/schedstat");
    uint64_t run_ns = 0, wait_ns = 0;
    if (schedstat >> run_ns >> wait_ns) {
      s.run_seconds = static_cast<double>(run_ns) / 1e9;
      s.wait_seconds = static_cast<double>(wait_ns) / 1e9;
      s.scheduler = true;
    }
    std::error_code ec;
    for (fs::directory_iterator it("/proc/self/task", ec), end; !ec && it != end;
         it.increment(ec)) {
      std::string comm;
      std::getline(std::ifstream(it->path() / "comm"), comm);
      if (comm != "rdk:mock") continue;
      uint64_t ns = 0;
      if (std::ifstream(it->path() / "schedstat") >> ns) {
        s.broker_seconds += static_cast<double>(ns) / 1e9;
      }
    }
    s.ok = static_cast<uint64_t>(ok_.Value());
    s.invalid = static_cast<uint64_t>(invalid_.Value());
    s.duplicate = static_cast<uint64_t>(duplicate_.Value());
    s.error = static_cast<uint64_t>(error_.Value());
    s.retries = static_cast<uint64_t>(retries_.Value());
    const prometheus::ClientMetric metric = processing_.Collect();
    s.count = metric.histogram.sample_count;
    s.sum = metric.histogram.sample_sum;
    for (const auto& b : metric.histogram.bucket)
      s.buckets.emplace_back(b.upper_bound, b.cumulative_count);
    return s;
  }

 private:
  prometheus::Counter& ok_;
  prometheus::Counter& invalid_;
  prometheus::Counter& duplicate_;
  prometheus::Counter& error_;
  prometheus::Counter& retries_;
  prometheus::Histogram& processing_;
};

// The q-quantile of what was observed between `a` and `b`, interpolated within its bucket as
// Prometheus' histogram_quantile() does; the highest finite bound when it lies beyond it.
std::optional<double> quantile(const Snapshot& a, const Snapshot& b, double q) {
  const uint64_t total = b.count - a.count;
  if (total == 0 || a.buckets.size() != b.buckets.size()) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  double lower = 0;
  uint64_t below = 0;
  for (size_t i = 0; i < b.buckets.size(); ++i) {
    const double upper = b.buckets[i].first;
    const uint64_t cumulative = b.buckets[i].second - a.buckets[i].second;
    if (static_cast<double>(cumulative) >= rank) {
      if (std::isinf(upper)) return lower;
      const uint64_t in_bucket = cumulative - below;
      if (in_bucket == 0) return upper;
      return lower +
             (upper - lower) * (rank - static_cast<double>(below)) / static_cast<double>(in_bucket);
    }
    lower = upper;
    below = cumulative;
  }
  return lower;
}

// Writes copies of the samples into the input topic from a thread of its own: at full speed it
// keeps backlog() messages ahead of what the worker has done; paced, it writes `rate` per second.
class Feeder {
 public:
  Feeder(const CopyMaker& copies, std::function<uint64_t()> done, uint64_t backlog)
      : copies_(copies), done_(std::move(done)), backlog_(backlog) {}
  ~Feeder() { stop(); }

  std::optional<std::string> open(const std::string& bootstrap, const std::string& topic) {
    kafka::Properties props{
        {"bootstrap.servers", bootstrap},
        {"client.id", "kpipe-plan-feeder"},
        {"linger.ms", "5"},
        {"batch.num.messages", "10000"},
        {"queue.buffering.max.messages", "1000000"},
        {"queue.buffering.max.kbytes", "1048576"},
        {"acks", "1"},
    };
    auto conf = kafka::makeConf({&props});
    if (auto* error = std::get_if<std::string>(&conf)) return "feeder: " + *error;
    rd_kafka_conf_t* c = std::get<kafka::ConfPtr>(conf).get();
    kafka::setLogger(c, "kpipe-plan-feeder");
    rd_kafka_conf_set_dr_msg_cb(c, &Feeder::onDelivery);
    rd_kafka_conf_set_opaque(c, this);
    auto client = kafka::makeClient(RD_KAFKA_PRODUCER, std::move(std::get<kafka::ConfPtr>(conf)));
    if (auto* error = std::get_if<std::string>(&client)) return "feeder: " + *error;
    producer_ = std::move(std::get<kafka::KafkaPtr>(client));
    topic_.reset(rd_kafka_topic_new(producer_.get(), topic.c_str(), nullptr));
    if (!topic_) return "feeder: cannot create a topic handle";
    return std::nullopt;
  }

  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // 0: at full speed (the default); negative: hold (write nothing); otherwise messages per
  // second from now on.
  void pace(double rate) { rate_ = rate; }
  // How far ahead of the worker to keep the input at full speed, in messages.
  void backlog(uint64_t messages) { backlog_ = messages; }
  // While on, counts how often the worker's backlog ran low.
  void window(bool on) { window_ = on; }

  uint64_t produced() const { return produced_; }
  uint64_t failed() const { return failed_; }
  // Why a copy could not be queued at all (not a full queue): the feeder stopped writing.
  std::optional<std::string> error() const {
    if (!failed_produce_) return std::nullopt;
    std::lock_guard lock(error_mutex_);
    return error_;
  }
  double lowFraction() const {
    const uint64_t samples = samples_;
    return samples == 0 ? 0 : static_cast<double>(low_) / static_cast<double>(samples);
  }

 private:
  static void onDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
    auto* self = static_cast<Feeder*>(opaque);
    if (message->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
        message->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
      return;  // purged at the end: not needed any more
    }
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++self->failed_;
    } else {
      ++self->acked_;
    }
  }

  bool produceOne(std::string& value) {
    const uint64_t n = produced_;
    const Sample& sample = copies_.make(n, value);
    rd_kafka_headers_t* headers = nullptr;
    if (!sample.headers.empty()) {
      headers = rd_kafka_headers_new(sample.headers.size());
      for (const auto& [name, text] : sample.headers) {
        rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), text.data(),
                            static_cast<ssize_t>(text.size()));
      }
    }
    // A tombstone has no value; a record without a key none either.
    void* payload = sample.value ? value.data() : nullptr;
    const size_t payload_size = sample.value ? value.size() : 0;
    const void* key = sample.key ? sample.key->data() : nullptr;
    const size_t key_size = sample.key ? sample.key->size() : 0;
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_.get(), RD_KAFKA_V_RKT(topic_.get()), RD_KAFKA_V_PARTITION(0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(payload, payload_size),
        RD_KAFKA_V_KEY(key, key_size), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (headers != nullptr) rd_kafka_headers_destroy(headers);  // taken only on success
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        // Anything but a full queue will not pass by retrying: fail now, not at a timeout.
        std::lock_guard lock(error_mutex_);
        if (error_.empty()) {
          error_ = "sample " + std::to_string(n % copies_.size() + 1) + " (" +
                   std::to_string(payload_size + key_size) + " bytes): " + rd_kafka_err2str(err);
        }
        failed_produce_ = true;
      }
      return false;  // queue full: after the next poll
    }
    produced_ = n + 1;
    return true;
  }

  void run() {
    std::string value;
    double current = 0;
    Clock::time_point paced_since;
    uint64_t paced_base = 0;
    while (!stop_ && !failed_produce_) {
      rd_kafka_poll(producer_.get(), 0);  // delivery reports
      const double rate = rate_;
      if (rate != current) {
        current = rate;
        paced_since = Clock::now();
        paced_base = produced_;
      }
      uint64_t target = 0;
      if (current == 0) {
        const uint64_t done = done_();
        const uint64_t backlog = backlog_;
        if (window_) {
          ++samples_;
          const uint64_t acked = acked_;
          if (acked < done + backlog / 4) ++low_;
        }
        target = done + backlog;
      } else if (current < 0) {
        target = produced_;
      } else {
        const double elapsed = std::chrono::duration<double>(Clock::now() - paced_since).count();
        target = paced_base + static_cast<uint64_t>(current * elapsed);
      }
      int made = 0;
      while (produced_ < target && made < 5000 && produceOne(value)) ++made;
      if (produced_ >= target || made == 0) std::this_thread::sleep_for(1ms);
    }
    // What is still queued is not needed: the measurement is over.
    rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(producer_.get(), 1000);
  }

  const CopyMaker& copies_;
  std::function<uint64_t()> done_;
  std::atomic<uint64_t> backlog_;
  kafka::KafkaPtr producer_;
  kafka::TopicPtr topic_;  // before producer_ in destruction: declared after it
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> window_{false};
  std::atomic<double> rate_{0};
  std::atomic<uint64_t> produced_{0}, acked_{0}, failed_{0}, samples_{0}, low_{0};
  std::atomic<bool> failed_produce_{false};
  mutable std::mutex error_mutex_;
  std::string error_;
};

std::string joinedLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += (out.empty() ? "" : "\n") + line;
  return out;
}

std::string percent(uint64_t part, uint64_t whole) {
  char out[16];
  std::snprintf(out, sizeof out, "%.0f%%",
                whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return out;
}

// The configured store, counting the ids it confirmed (wrote for good) for the report.
class CountingStore : public dedup::Store {
 public:
  explicit CountingStore(std::unique_ptr<dedup::Store> inner) : inner_(std::move(inner)) {}

  std::unique_ptr<dedup::Session> open(boost::asio::io_context& io,
                                       const std::string& ns) override {
    return std::make_unique<Session>(inner_->open(io, ns), confirmed_);
  }
  const std::string& name() const override { return inner_->name(); }
  uint64_t confirmed() const { return *confirmed_; }

 private:
  class Session : public dedup::Session {
   public:
    Session(std::unique_ptr<dedup::Session> inner, std::shared_ptr<std::atomic<uint64_t>> count)
        : inner_(std::move(inner)), count_(std::move(count)) {}
    void reserve(std::string_view id, std::string_view owner, ReserveDone done) override {
      inner_->reserve(id, owner, std::move(done));
    }
    void confirm(std::string_view id, ConfirmDone done) override {
      inner_->confirm(id, [count = count_, done = std::move(done)](std::string_view error) {
        if (error.empty()) ++*count;
        done(error);
      });
    }
    void release(std::string_view id, std::string_view owner) override {
      inner_->release(id, owner);
    }

   private:
    std::unique_ptr<dedup::Session> inner_;
    std::shared_ptr<std::atomic<uint64_t>> count_;
  };

  std::unique_ptr<dedup::Store> inner_;
  std::shared_ptr<std::atomic<uint64_t>> confirmed_ = std::make_shared<std::atomic<uint64_t>>(0);
};

// Whether `store` answers: a reserve (and release) of a probe id within its timeout.
std::optional<std::string> probe(boost::asio::io_context& io, dedup::Store& store,
                                 const std::string& ns, std::chrono::milliseconds timeout) {
  auto session = store.open(io, ns);
  std::optional<std::string> answer;
  const std::string id = "kpipe-plan-probe";
  session->reserve(id, "probe", [&](const dedup::ReserveReply& reply) {
    answer = reply.error;
    io.stop();
  });
  boost::asio::steady_timer deadline(io, timeout);
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) io.stop();
  });
  if (!answer) io.run();
  deadline.cancel();
  io.restart();
  if (!answer) return std::string("no answer within ") + std::to_string(timeout.count()) + " ms";
  if (!answer->empty()) return answer;
  session->release(id, "probe");
  io.poll();
  session.reset();
  io.restart();
  return std::nullopt;
}

// A new directory beside `path` (same file system, so LMDB writes cost what they would there).
std::variant<fs::path, std::string> scratchDirBeside(const fs::path& configured) {
  // "/var/lib/kpipe/ids/" names the directory ids: beside it, not inside it.
  fs::path path = configured.lexically_normal();
  if (!path.empty() && !path.has_filename()) path = path.parent_path();
  fs::path parent = path.parent_path();
  if (parent.empty()) parent = ".";
  std::string pattern = (parent / (path.filename().string() + ".plan-measure-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return "cannot create a scratch database beside " + path.string() + ": " + std::strerror(errno);
  }
  return fs::path(pattern);
}

}  // namespace

std::variant<Measurement, std::string> measure(const MeasureOptions& o, double headroom,
                                               std::ostream& progress) {
  // 1. The config, as `kpipe check` checks it.
  std::error_code ec;
  if (!fs::exists(o.config, ec)) {
    return "no config at " + o.config +
           ": give it with --config PATH (the kpipe.yaml of `kpipe run`)";
  }
  config::LoadResult loaded = config::loadConfig(o.config);
  std::vector<std::string> errors;
  for (const auto& e : loaded.errors) errors.push_back(e.str());
  if (loaded.ok()) {
    for (auto& line : app::validate(*loaded.config)) errors.push_back(std::move(line));
  }
  if (!errors.empty()) {
    return joinedLines(errors) + "\n" + o.config + ": " + std::to_string(errors.size()) +
           " config error" + (errors.size() == 1 ? "" : "s") + " (see `kpipe check`)";
  }
  const config::Config& config = *loaded.config;
  const config::PipelineSpec* found = nullptr;
  std::string names;
  for (const auto& p : config.pipelines) {
    names += (names.empty() ? "" : ", ") + p.name;
    if (p.name == o.pipeline) found = &p;
  }
  if (found == nullptr) {
    return "no pipeline \"" + o.pipeline + "\" in " + o.config +
           (names.empty() ? std::string(" (it has none)") : " (pipelines: " + names + ")");
  }
  const config::PipelineSpec& p = *found;
  std::string http_url;
  if (p.output.http) {
    http_url = p.output.http->url_secret ? config::redactSecretUrl(p.output.http->url)
                                         : config::redactUrl(p.output.http->url);
    if (!o.allow_http) {
      return "pipeline " + p.name + " writes its output to " + http_url +
             ": measuring would send it thousands of sample copies a second. Pass --allow-http "
             "to measure against that endpoint (a test instance, preferably)";
    }
  }

  // 2. Samples.
  Samples samples;
  if (o.sample) {
    auto read = readSampleFile(*o.sample);
    if (auto* error = std::get_if<std::string>(&read)) return *error;
    samples = std::move(std::get<Samples>(read));
  } else {
    samples = samplesFromTests(config, p);
    if (samples.messages.empty()) {
      return "no samples for pipeline " + p.name + ": pass --sample FILE (JSON Lines: one " +
             "message value per line, or KEY<TAB>VALUE), or give it `kpipe test` cases (" +
             (config.pipelines_dir / (p.name + ".test.yaml")).string() + ")";
    }
  }
  std::random_device random;
  CopyMaker::Options copy_options;
  copy_options.id_pointer = p.dedup ? p.dedup->id_pointer : "";
  copy_options.key_pointer = p.key_pointer;
  copy_options.keys = o.keys;
  copy_options.salt = (uint64_t{random()} << 32) ^ random();
  const size_t sample_count = samples.messages.size();
  std::set<std::string> sample_keys;
  for (const auto& s : samples.messages) {
    if (!s.value) continue;
    if (auto key = findScalar(*s.value, p.key_pointer)) sample_keys.insert(key->text);
  }
  CopyMaker copies(std::move(samples.messages), copy_options);

  Measurement m;
  m.pipeline = p.name;
  m.config_file = o.config;
  m.sample_source = samples.source;
  m.samples = sample_count;
  m.sample_bytes = copies.averageBytes();
  if (p.dedup) {
    m.ids = "the id (" + p.dedup->id_pointer +
            ") of every copy is rewritten to a fresh unique value of the same type and form, so "
            "that dedup sees new ids";
    if (copies.idsRewritten() < sample_count) {
      m.ids += " (" + std::to_string(sample_count - copies.idsRewritten()) + " of " +
               std::to_string(sample_count) +
               " samples have no string or number id there: theirs stay)";
    }
  } else {
    m.ids = "the pipeline has no dedup: copies keep the samples' ids";
  }
  if (copy_options.key_pointer == copy_options.id_pointer) {
    m.keys = "the ordering key (" + p.key_pointer + ") is the id: fresh in every copy";
  } else if (o.keys > 0 && copies.keysRewritten() > 0) {
    m.keys = "the ordering key (" + p.key_pointer + ") of the copies is one of " +
             std::to_string(o.keys) +
             " values of the samples' form (--keys N; --keys sample keeps the samples' " +
             std::to_string(sample_keys.size()) + ")";
  } else {
    m.keys = "as in the samples: " + std::to_string(sample_keys.size()) + " distinct (" +
             p.key_pointer + ")";
  }

  log::configure(config::LogSpec{config::LogFormat::Text, config::LogLevel::Warn});

  // 3. The embedded broker and the measurement's own topics, group and dedup namespace.
  const std::string name = std::string(kPrefix) + p.name;
  config::PipelineSpec spec = p;
  spec.name = name;
  spec.input.topic = name + ".input";
  spec.input.group = name;
  if (!spec.output.http) spec.output.topic = name + ".output";
  spec.errors.topic = name + ".errors";
  spec.errors.audit_topic = name + ".audit";

  auto started = kafka::EmbeddedBroker::start(1);
  if (auto* error = std::get_if<std::string>(&started)) return "embedded broker: " + *error;
  // Declared first: it goes last, after the worker and the feeder that talk to it.
  std::unique_ptr<kafka::EmbeddedBroker> broker =
      std::move(std::get<std::unique_ptr<kafka::EmbeddedBroker>>(started));
  if (auto error = broker->createTopic(spec.input.topic, 1)) return "embedded broker: " + *error;
  for (const std::string& topic : {spec.output.topic, spec.errors.topic, spec.errors.audit_topic}) {
    if (topic.empty()) continue;
    if (auto error = broker->createTopic(topic, kOutputPartitions)) {
      return "embedded broker: " + *error;
    }
  }
  m.output = spec.output.http ? "HTTP " + http_url + " (--allow-http), for real"
                              : "a private topic (" + std::to_string(kOutputPartitions) +
                                    " partitions) on the embedded broker";

  boost::asio::io_context io(1);
  observe::Metrics metrics;

  // SIGINT/SIGTERM: the measurement stops as a finished one does (the worker drains, the
  // feeder joins, the scratch database goes) and the result is kInterrupted. Before the scratch
  // database is made: from here on no signal ends the process without cleaning up. A signal that
  // comes while nothing runs on `io` is answered when something does.
  bool interrupted = false;
  std::function<void()> on_interrupt = [&io] { io.stop(); };
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    interrupted = true;
    on_interrupt();
  });

  // The dedup store: a memory store, or the configured one with --use-store.
  fs::path scratch;
  struct RemoveScratch {
    fs::path& dir;
    ~RemoveScratch() {
      std::error_code ignored;
      if (!dir.empty()) fs::remove_all(dir, ignored);
    }
  } remove_scratch{scratch};
  // After remove_scratch: the store (an LMDB environment in the scratch directory) is closed
  // before the directory is removed, on every return.
  std::shared_ptr<dedup::Store> store;
  const CountingStore* counted = nullptr;  // the configured store (--use-store): ids written
  if (p.dedup) {
    config::StoreSpec store_spec;
    store_spec.name = "memory";
    if (!p.dedup->store.empty()) store_spec = config.stores.at(p.dedup->store);
    const std::string configured =
        p.dedup->store.empty()
            ? "a private memory store"
            : p.dedup->store + " (" + config::storeTypeName(store_spec.type) + ")";
    const bool external = store_spec.type != config::StoreType::Memory;
    const bool counting = external && o.use_store;  // the configured one: ids written to it
    constexpr const char* kInstead = "; leave out --use-store to measure with an in-memory store";
    if (external && !o.use_store) {
      config::StoreSpec memory;
      memory.name = "memory";
      memory.ttl = store_spec.ttl;
      memory.reservation_ttl = store_spec.reservation_ttl;
      store_spec = memory;
      m.store = "a memory store instead of " + configured +
                " (--use-store measures with it, writing the measurement's ids to it)";
    } else if (external) {
      // Ids only matter while the measurement runs: none outlives it by long.
      store_spec.ttl = std::min<config::Duration>(store_spec.ttl, kStoreTtl);
      store_spec.reservation_ttl =
          std::min<config::Duration>(store_spec.reservation_ttl, kStoreTtl);
      if (store_spec.type == config::StoreType::Redis) {
        m.store = p.dedup->store + " (redis " + store_spec.redis.display +
                  ", --use-store): the measurement's ids are kept under " + name +
                  " and expire after 10 min";
      } else {
        auto dir = scratchDirBeside(store_spec.path);
        if (auto* error = std::get_if<std::string>(&dir)) {
          return "store " + p.dedup->store + ": " + *error + kInstead;
        }
        scratch = std::get<fs::path>(dir);
        store_spec.path = scratch;
        m.store = p.dedup->store + " (lmdb, --use-store): a scratch database beside " +
                  config.stores.at(p.dedup->store).path.string() + ", removed afterwards";
      }
    } else {
      m.store = configured;
    }
    auto made = dedup::makeStore(store_spec, &metrics);
    if (auto* error = std::get_if<std::string>(&made)) {
      return "store " + store_spec.name + ": " + *error + (counting ? kInstead : "");
    }
    if (counting) {
      auto wrapped =
          std::make_shared<CountingStore>(std::move(std::get<std::unique_ptr<dedup::Store>>(made)));
      counted = wrapped.get();
      store = std::move(wrapped);
    } else {
      store = std::move(std::get<std::unique_ptr<dedup::Store>>(made));
    }
    if (store_spec.type == config::StoreType::Redis) {
      auto error = probe(io, *store, name, store_spec.timeout + 1s);
      if (interrupted) return std::string(kInterrupted);
      if (error) {
        return "store " + p.dedup->store + " (" + store_spec.redis.display +
               ") does not answer: " + *error + kInstead;
      }
    }
  }

  std::unique_ptr<sinks::Sink> sink;
  if (spec.output.http) {
    auto http = sinks::HttpSink::create(io, *spec.output.http);
    if (auto* error = std::get_if<std::string>(&http)) return *error;
    sink = std::move(std::get<std::unique_ptr<sinks::HttpSink>>(http));
  }

  std::set<std::string> dropped;
  pipeline::WorkerOptions options;
  options.bootstrap = broker->bootstrap();
  options.properties = forEmbedded(config.kafka.properties, dropped);
  options.consumer_properties = forEmbedded(config.kafka.consumer_properties, dropped);
  options.producer_properties = forEmbedded(config.kafka.producer_properties, dropped);
  // The embedded broker answers a fetch that finds no data only after fetch.wait.max.ms (500 ms
  // by default), where Kafka answers as soon as data arrives: at the paced load, W would be
  // mostly that wait. A short one stands in for Kafka's behaviour.
  if (options.consumer_properties.contains("fetch.wait.max.ms") ||
      options.properties.contains("fetch.wait.max.ms")) {
    m.notes.push_back("fetch.wait.max.ms of the config is replaced by " +
                      std::string(kFetchWaitMs) +
                      " ms: the embedded broker holds a fetch that finds no data for all of "
                      "it, where Kafka answers as soon as data arrives");
  }
  options.consumer_properties["fetch.wait.max.ms"] = kFetchWaitMs;
  // The feeder starts writing before the worker's consumer joins: it must read from the start
  // of the input topic, where `latest` would wait for what comes after it joined (the feeder
  // keeps only a backlog ahead, so it would stall).
  for (const kafka::Properties* props : {&options.properties, &options.consumer_properties}) {
    auto it = props->find("auto.offset.reset");
    if (it != props->end() && it->second != "earliest" && it->second != "smallest" &&
        it->second != "beginning") {
      m.notes.push_back("auto.offset.reset=" + it->second +
                        " of the config is replaced by earliest: the measurement reads its input "
                        "topic from the start");
      break;
    }
  }
  options.properties.erase("auto.offset.reset");
  options.consumer_properties["auto.offset.reset"] = "earliest";
  options.drain_timeout = 1s;
  if (!dropped.empty()) {
    std::string list;
    for (const auto& d : dropped) list += (list.empty() ? "" : ", ") + d;
    m.notes.push_back("kafka properties left out (they are for your cluster): " + list);
  }

  auto created = pipeline::Worker::create(io, spec, options, store.get(), std::move(sink), metrics);
  if (auto* error = std::get_if<std::string>(&created)) return *error;
  std::unique_ptr<pipeline::Worker> worker =
      std::move(std::get<std::unique_ptr<pipeline::Worker>>(created));

  // 4. The feeder, then the worker; the phases below run on a timer of the io thread.
  Readings readings(metrics, name);
  // The backlog: half a second of the worker's recent rate (so that the full-speed phase
  // drains quickly before W is measured), within what the embedded broker keeps.
  const double max_backlog =
      std::clamp(kBacklogBytes / (m.sample_bytes + kRecordOverhead), kMinBacklog, 200'000.0);
  Feeder feeder(
      copies, [&readings] { return readings.done(); }, static_cast<uint64_t>(kMinBacklog));
  std::deque<std::pair<Clock::time_point, uint64_t>> recent;  // (when, done) over kRateWindow
  auto adaptBacklog = [&](Clock::time_point now) {
    recent.emplace_back(now, readings.done());
    while (recent.size() > 2 && now - recent.front().first > kRateWindow) recent.pop_front();
    const double span = std::chrono::duration<double>(now - recent.front().first).count();
    if (span <= 0) return;
    const double rate = static_cast<double>(recent.back().second - recent.front().second) / span;
    feeder.backlog(static_cast<uint64_t>(std::clamp(rate * 0.5, kMinBacklog, max_backlog)));
  };
  if (auto error = feeder.open(broker->bootstrap(), spec.input.topic)) return *error;

  progress << "kpipe plan: measuring pipeline " << p.name << " (" << sample_count << " sample"
           << (sample_count == 1 ? "" : "s") << " from " << m.sample_source << ") for " << o.seconds
           << " s + " << std::max(1.0, o.seconds / 2) << " s on an embedded broker..." << std::endl;
  feeder.start();
  worker->start();

  enum class Phase { Joining, WarmUp, Throughput, Drain, Settle, Latency, Stopping };
  Phase phase = Phase::Joining;
  const auto seconds =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  const auto warm_up = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::min(1.0, o.seconds / 5)));
  const auto latency_window = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::max(1.0, o.seconds / 2)));
  Clock::time_point phase_since = Clock::now();
  Snapshot throughput_from, throughput_to, latency_from, latency_to;
  std::string failure;
  double paced = 0;
  uint64_t undrained = 0;  // the drain before W timed out with this many left
  Clock::duration drain_deadline{};
  // Produced but not done yet, never negative: a redelivered message is done twice.
  auto outstanding = [&]() -> uint64_t {
    const int64_t left =
        static_cast<int64_t>(feeder.produced()) - static_cast<int64_t>(readings.done());
    return static_cast<uint64_t>(std::max<int64_t>(0, left));
  };
  auto enter = [&](Phase next) {
    phase = next;
    phase_since = Clock::now();
  };
  auto stop = [&] {
    enter(Phase::Stopping);
    feeder.stop();
    // What is left in flight is not needed: no warning about leaving it.
    log::configure(config::LogSpec{config::LogFormat::Text, config::LogLevel::Error});
    worker->stop([&io] { io.stop(); });
  };
  auto why = [&] {
    pipeline::PipelineStatus status = worker->status();
    std::string out = worker->healthError();
    if (out.empty()) out = worker->readiness();
    if (out.empty() && !status.last_error.empty()) out = "last error: " + status.last_error;
    if (status.blocked > 0) {
      out += (out.empty() ? "" : "; ") + std::to_string(status.blocked) +
             " messages wait for a retry (blocking failures)";
    }
    return out.empty() ? std::string("no reason given") : out;
  };

  boost::asio::steady_timer timer(io);
  std::function<void()> tick = [&] {
    const Clock::time_point now = Clock::now();
    if (auto error = feeder.error()) {
      failure = "the feeder could not write " + *error;
      return stop();
    }
    adaptBacklog(now);
    switch (phase) {
      case Phase::Joining:
        if (readings.done() > 0) {
          enter(Phase::WarmUp);
        } else if (now - phase_since > kJoinTimeout) {
          failure = "no message was done within 30 s of starting: " + why();
          return stop();
        }
        break;
      case Phase::WarmUp:
        if (now - phase_since >= warm_up) {
          throughput_from = readings.snapshot();
          feeder.window(true);
          enter(Phase::Throughput);
        }
        break;
      case Phase::Throughput:
        if (now - phase_since >= seconds) {
          throughput_to = readings.snapshot();
          feeder.window(false);
          const double elapsed =
              std::chrono::duration<double>(throughput_to.at - throughput_from.at).count();
          const uint64_t done = throughput_to.done() - throughput_from.done();
          if (done == 0) {
            char window[32];
            std::snprintf(window, sizeof window, "%g", o.seconds);
            failure = std::string("no message was done in ") + window + " s: " + why();
            return stop();
          }
          paced = static_cast<double>(done) / elapsed / headroom;
          // Three times what the left-over backlog should take at the measured rate, and time
          // for a fetch backoff or two of librdkafka's (a full prefetch queue waits ~1 s).
          drain_deadline = std::max<Clock::duration>(
              {seconds, Clock::duration(5s),
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                   3.0 * static_cast<double>(outstanding()) / (paced * headroom)))});
          feeder.pace(-1);  // the backlog of the full-speed phase goes first
          enter(Phase::Drain);
        }
        break;
      case Phase::Drain:
        if (readings.done() + feeder.failed() >= feeder.produced()) {
          feeder.pace(paced);
          enter(Phase::Settle);
        } else if (now - phase_since > drain_deadline) {
          undrained = std::max<uint64_t>(1, outstanding());
          return stop();
        }
        break;
      case Phase::Settle:
        if (now - phase_since >= kSettle) {
          latency_from = readings.snapshot();
          enter(Phase::Latency);
        }
        break;
      case Phase::Latency:
        if (now - phase_since >= latency_window) {
          latency_to = readings.snapshot();
          return stop();
        }
        break;
      case Phase::Stopping:
        return;
    }
    timer.expires_after(kTick);
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) tick();
    });
  };
  on_interrupt = [&] {
    if (phase != Phase::Stopping) stop();
  };
  tick();
  io.run();
  feeder.stop();
  if (interrupted) failure = kInterrupted;
  const double low = feeder.lowFraction();
  const uint64_t failed = feeder.failed();
  worker.reset();  // before the store it uses and the broker it talks to
  if (counted != nullptr) {
    const uint64_t written = counted->confirmed();
    m.store += "; " + std::to_string(written) + (written == 1 ? " id" : " ids") + " written";
  }
  counted = nullptr;
  store.reset();
  if (!failure.empty()) return failure;

  m.seconds = std::chrono::duration<double>(throughput_to.at - throughput_from.at).count();
  m.messages = throughput_to.done() - throughput_from.done();
  m.ok = throughput_to.ok - throughput_from.ok;
  m.invalid = throughput_to.invalid - throughput_from.invalid;
  m.duplicate = throughput_to.duplicate - throughput_from.duplicate;
  m.error = throughput_to.error - throughput_from.error;
  m.per_partition = static_cast<double>(m.messages) / m.seconds;
  m.latency_load = paced;
  m.latency_messages = latency_to.count - latency_from.count;
  if (undrained > 0) {
    m.warnings.push_back("W was not measured: the backlog of the full-speed phase (" +
                         std::to_string(undrained) + " messages left) did not drain in time");
  } else if (m.latency_messages > 0) {
    m.latency_mean = (latency_to.sum - latency_from.sum) / static_cast<double>(m.latency_messages);
    m.latency_p50 = quantile(latency_from, latency_to, 0.5);
    m.latency_p99 = quantile(latency_from, latency_to, 0.99);
  } else {
    m.warnings.push_back("W was not measured: no message was done at the paced load (" +
                         std::to_string(static_cast<uint64_t>(paced)) + " msg/s)");
  }
  m.notes.push_back("the embedded broker, the feeder and kpipe shared this machine's " +
                    std::to_string(std::max(1u, std::thread::hardware_concurrency())) +
                    " cores; a real cluster takes the broker's work off it and adds network "
                    "round trips to W");
  // What bounded the rate: kpipe's thread (busy), other processes (its thread waited for a
  // CPU), or waiting for acknowledgements with all it may have in flight.
  const double busy = (throughput_to.run_seconds - throughput_from.run_seconds) / m.seconds;
  const double starved = (throughput_to.wait_seconds - throughput_from.wait_seconds) / m.seconds;
  auto share = [](double fraction) {
    return std::to_string(static_cast<int>(std::round(fraction * 100))) + "%";
  };
  const double broker_busy =
      (throughput_to.broker_seconds - throughput_from.broker_seconds) / m.seconds;
  if (broker_busy > 0.7) {
    m.warnings.push_back("the embedded broker's thread was busy " + share(broker_busy) +
                         " of the time: it may be what bounds this rate, which is then a lower "
                         "bound of what kpipe does against a real cluster");
  }
  if (!throughput_from.scheduler || !throughput_to.scheduler) {
    // No /proc/thread-self/schedstat: what bounded the rate is not known.
  } else if (starved > 0.2) {
    m.warnings.push_back("kpipe's thread waited for a CPU " + share(starved) +
                         " of the time (other work on this machine): the throughput is lower "
                         "than on an idle machine");
  } else if (busy >= 0.6) {
    char each[32];
    std::snprintf(each, sizeof each, "%.1f µs",
                  1e6 * busy * m.seconds / static_cast<double>(std::max<uint64_t>(1, m.messages)));
    m.notes.push_back("kpipe's thread was busy " + share(busy) +
                      " of the time: its CPU bounds this rate (" + each + " per message)");
  } else {
    // Ordering by key: one message per key at a time, so no more than the distinct keys.
    uint64_t in_flight = p.ordering == config::Ordering::Partition ? 1 : p.concurrency;
    if (p.ordering == config::Ordering::Key &&
        copy_options.key_pointer != copy_options.id_pointer) {
      in_flight = std::min<uint64_t>(
          in_flight, o.keys > 0 && copies.keysRewritten() > 0 ? o.keys : sample_keys.size());
    }
    in_flight = std::min<uint64_t>(in_flight, p.max_pending);
    std::string limit = "concurrency";
    if (p.ordering == config::Ordering::Partition) {
      limit = "ordering: partition";
    } else if (in_flight < p.concurrency) {
      limit = in_flight == p.max_pending ? "max_pending" : "distinct keys, --keys";
    }
    m.notes.push_back("kpipe's thread was busy " + share(busy) +
                      " of the time: waiting bounds this rate (for the broker, the store, "
                      "acknowledgements), not kpipe's CPU; at most " +
                      std::to_string(in_flight) + " messages may be in flight (" + limit + ")" +
                      (broker_busy > 0.7 ? "" : ", embedded broker busy " + share(broker_busy)));
  }
  if (low > 0.05) {
    m.warnings.push_back("the input ran low " + percent(static_cast<uint64_t>(low * 1000), 1000) +
                         " of the time (the feeder could not keep up): the throughput is a "
                         "lower bound");
  }
  if (m.ok < m.messages * 9 / 10) {
    m.warnings.push_back("only " + percent(m.ok, m.messages) +
                         " of the messages went to the output: the throughput is partly that "
                         "of the error and audit paths (`kpipe test` shows what the samples do)");
  }
  if (const uint64_t retries = throughput_to.retries - throughput_from.retries; retries > 0) {
    m.warnings.push_back(std::to_string(retries) +
                         " retries after blocking failures (store, sink or broker) during the "
                         "measurement: the throughput is lower than the pipeline's own");
  }
  if (failed > 0) {
    m.warnings.push_back(std::to_string(failed) + " sample copies could not be written");
  }
  return m;
}

}  // namespace kpipe::plan
