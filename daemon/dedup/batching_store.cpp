#include "daemon/dedup/batching_store.h"

#include "daemon/observe/log.h"

#include <boost/asio/post.hpp>
#include <unistd.h>

#include <random>

namespace kpipe::dedup {
namespace log = observe::log;

const char* reserveResultName(ReserveResult result) {
  switch (result) {
    case ReserveResult::New:
      return "new";
    case ReserveResult::InProgress:
      return "in_progress";
    case ReserveResult::Done:
      return "done";
  }
  return "?";
}

namespace {
const char* kOpNames[] = {"reserve", "confirm", "release"};

std::string makeInstanceToken() {
  std::random_device random;
  uint64_t bits = (static_cast<uint64_t>(random()) << 32) ^ random();
  char text[40];
  snprintf(text, sizeof text, "%d-%016llx", static_cast<int>(getpid()),
           static_cast<unsigned long long>(bits));
  return text;
}
}  // namespace

// What a session and the store's thread share: answers ready for the session's io_context.
// The session's destruction clears `open`; answers that arrive later are dropped.
struct BatchingStore::SessionCore {
  SessionCore(boost::asio::io_context& io, std::string ns) : io(io), ns(std::move(ns)) {}
  boost::asio::io_context& io;
  const std::string ns;
  std::mutex mutex;
  bool open = true;
  bool drain_posted = false;
  std::vector<Request> ready;  // answered, not yet delivered
  std::vector<Request> delivering;

  // On the io_context thread.
  void drain() {
    {
      std::lock_guard lock(mutex);
      drain_posted = false;
      if (!open) return;
      delivering.swap(ready);
    }
    for (Request& r : delivering) {
      if (r.op.kind == Operation::Kind::Reserve) {
        r.reserve_done(ReserveReply{r.op.result, std::move(r.op.error)});
      } else if (r.op.kind == Operation::Kind::Confirm) {
        r.confirm_done(r.op.error);
      }
      std::lock_guard lock(mutex);
      if (!open) break;  // a callback destroyed the session
    }
    delivering.clear();
  }
};

class BatchingStore::BatchSession final : public Session {
 public:
  BatchSession(BatchingStore& store, std::shared_ptr<SessionCore> core)
      : store_(store), core_(std::move(core)) {}
  ~BatchSession() override {
    std::lock_guard lock(core_->mutex);
    core_->open = false;
    core_->ready.clear();
  }

  void reserve(std::string_view id, std::string_view owner, ReserveDone done) override {
    Request r = request(Operation::Kind::Reserve, id, owner);
    r.reserve_done = std::move(done);
    if (!store_.enqueue(std::move(r))) {
      // Not inside the call: the caller may not expect an answer before reserve() returns.
      post([done = std::move(r.reserve_done)] {
        done(ReserveReply{ReserveResult::New, "store queue full"});
      });
    }
  }
  void confirm(std::string_view id, ConfirmDone done) override {
    Request r = request(Operation::Kind::Confirm, id, {});
    r.confirm_done = std::move(done);
    if (!store_.enqueue(std::move(r))) {
      post([done = std::move(r.confirm_done)] { done("store queue full"); });
    }
  }
  void release(std::string_view id, std::string_view owner) override {
    store_.enqueue(request(Operation::Kind::Release, id, owner));
  }

 private:
  Request request(Operation::Kind kind, std::string_view id, std::string_view owner) {
    Request r;
    r.op.kind = kind;
    r.op.key.reserve(core_->ns.size() + 1 + id.size());
    r.op.key.append(core_->ns).append(1, ':').append(id);
    if (kind != Operation::Kind::Confirm) {
      r.op.owner.reserve(store_.instance_.size() + 1 + owner.size());
      r.op.owner.append(store_.instance_).append(1, '/').append(owner);
    }
    r.session = core_;
    r.enqueued = std::chrono::steady_clock::now();
    return r;
  }
  template <class F>
  void post(F&& f) {
    boost::asio::post(core_->io, [core = core_, f = std::forward<F>(f)] {
      bool open;
      {
        std::lock_guard lock(core->mutex);
        open = core->open;
      }
      if (open) f();
    });
  }

  BatchingStore& store_;
  std::shared_ptr<SessionCore> core_;
};

BatchingStore::BatchingStore(std::string name, std::unique_ptr<Backend> backend, Ttls ttls,
                             BatchingOptions options, observe::Metrics* metrics)
    : name_(std::move(name)),
      backend_(std::move(backend)),
      ttls_(ttls),
      options_(options),
      metrics_(metrics),
      instance_(makeInstanceToken()) {
  if (metrics_ != nullptr) {
    queue_depth_ = &metrics_->queue_depth.Add({{"queue", "store"}, {"store", name_}});
    for (size_t i = 0; i < seconds_.size(); ++i) {
      seconds_[i] = &metrics_->store_seconds.Add({{"store", name_}, {"op", kOpNames[i]}},
                                                 observe::kLatencyBuckets);
    }
  }
  thread_ = std::thread([this] { loop(); });
}

BatchingStore::~BatchingStore() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (metrics_ != nullptr) {
    metrics_->queue_depth.Remove(queue_depth_);
    for (auto* h : seconds_) metrics_->store_seconds.Remove(h);
  }
}

std::unique_ptr<Session> BatchingStore::open(boost::asio::io_context& io, const std::string& ns) {
  return std::make_unique<BatchSession>(*this, std::make_shared<SessionCore>(io, ns));
}

bool BatchingStore::enqueue(Request&& request) {
  size_t depth;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= options_.max_queue) return false;
    queue_.push_back(std::move(request));
    depth = queue_.size();
  }
  if (depth == 1) wake_.notify_one();
  return true;
}

void BatchingStore::loop() {
  std::vector<Request> batch;
  std::vector<Operation> ops;
  auto last_idle = std::chrono::steady_clock::now();
  bool last_batch = false;
  while (!last_batch) {
    batch.clear();
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, backend_->idleInterval(),
                     [this] { return stopping_ || !queue_.empty(); });
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (queue_depth_ != nullptr) queue_depth_->Set(static_cast<double>(queue_.size()));
      // Stopping: one more batch (releases given back at the end are worth sending), not
      // more: a store that does not answer would hold the shutdown for a timeout per batch.
      last_batch = stopping_;
    }
    const auto now = std::chrono::steady_clock::now();
    if (batch.empty() || now - last_idle >= backend_->idleInterval()) {
      if (!last_batch) backend_->idle();
      last_idle = now;
    }
    if (batch.empty()) continue;
    ops.clear();
    for (Request& r : batch) ops.push_back(std::move(r.op));
    backend_->run(ops, ttls_);
    for (size_t i = 0; i < batch.size(); ++i) batch[i].op = std::move(ops[i]);
    answer(batch);
  }
  // What still waits is answered with an error: its sessions, if still open, retry.
  std::lock_guard lock(mutex_);
  batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  for (Request& r : batch) r.op.error = "store " + name_ + " is shutting down";
  answer(batch);
}

// Hands each answer to its session, one post per session and batch.
void BatchingStore::answer(std::vector<Request>& batch) {
  const auto now = std::chrono::steady_clock::now();
  for (Request& r : batch) {
    const auto kind = static_cast<size_t>(r.op.kind);
    if (seconds_[kind] != nullptr) {
      seconds_[kind]->Observe(std::chrono::duration<double>(now - r.enqueued).count());
    }
    if (r.op.kind == Operation::Kind::Release) {
      if (!r.op.error.empty()) {
        log::debug("dedup release failed (the reservation will expire)",
                   {{"store", name_}, {"error", r.op.error}});
      }
      continue;
    }
    std::shared_ptr<SessionCore> core = std::move(r.session);
    bool post = false;
    {
      std::lock_guard lock(core->mutex);
      if (!core->open) continue;
      core->ready.push_back(std::move(r));
      if (!core->drain_posted) post = core->drain_posted = true;
    }
    if (post) boost::asio::post(core->io, [core] { core->drain(); });
  }
}

}  // namespace kpipe::dedup
