#pragma once
// A Store whose operations run on a thread of its own, in batches: what the pipelines ask for
// while one batch runs forms the next. A remote backend turns a batch into one pipelined round
// trip (redis), a durable one into one transaction and one sync (lmdb), so that neither the
// round trip nor the fsync bounds throughput, and no io_context thread ever waits for them.
//
// Answers go back to each session's io_context, one post per session and batch.
// The request queue is bounded (max_queue): when it is full, reserve and confirm answer with
// an error at once (a blocking failure: the caller retries), releases are dropped (they expire).
// Its depth is kpipe_queue_depth{queue="store",store=NAME}; every operation's time from request
// to answer is kpipe_store_seconds{store,op}.

#include "daemon/dedup/store.h"
#include "daemon/observe/metrics.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace kpipe::dedup {

// One operation of a batch, as a backend sees it.
struct Operation {
  enum class Kind : uint8_t { Reserve, Confirm, Release };
  Kind kind = Kind::Reserve;
  // The id qualified by its session's namespace: "NAMESPACE:ID".
  std::string key;
  // Reserve and release: who holds the reservation, unique per process and message copy.
  std::string owner;
  ReserveResult result = ReserveResult::New;  // reserve: set by the backend
  std::string error;  // set by the backend when this operation did not happen (or may not have)
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Runs `ops` in order as one batch and sets each one's result or error. A failure of the
  // whole batch (connection lost) sets the error of every operation it may not have done.
  // Called on the store's thread only.
  virtual void run(std::span<Operation> ops, const Ttls& ttls) = 0;
  // Called on the store's thread when no request came for `idle_interval`, and at least that
  // often under load: for housekeeping such as sweeping expired ids.
  virtual void idle() {}
  virtual std::chrono::milliseconds idleInterval() const { return std::chrono::seconds(1); }
};

struct BatchingOptions {
  size_t max_queue = 65536;  // requests waiting for the store's thread
  size_t max_batch = 512;    // operations per backend run
};

class BatchingStore final : public Store {
 public:
  // `metrics` may be null (tests, tools).
  BatchingStore(std::string name, std::unique_ptr<Backend> backend, Ttls ttls,
                BatchingOptions options, observe::Metrics* metrics);
  ~BatchingStore() override;  // finishes the batch under way; what waits is answered with errors

  std::unique_ptr<Session> open(boost::asio::io_context& io, const std::string& ns) override;
  const std::string& name() const override { return name_; }

  // This process's part of every owner, so that another process never matches our owners.
  const std::string& instanceToken() const { return instance_; }

 private:
  struct SessionCore;
  class BatchSession;
  struct Request {
    Operation op;
    std::shared_ptr<SessionCore> session;
    Session::ReserveDone reserve_done;
    Session::ConfirmDone confirm_done;
    std::chrono::steady_clock::time_point enqueued;
  };
  bool enqueue(Request&& request);
  void loop();
  void answer(std::vector<Request>& batch);

  std::string name_;
  std::unique_ptr<Backend> backend_;
  Ttls ttls_;
  BatchingOptions options_;
  observe::Metrics* metrics_;
  std::string instance_;
  prometheus::Gauge* queue_depth_ = nullptr;
  std::array<prometheus::Histogram*, 3> seconds_{};  // by Operation::Kind

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Request> queue_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once everything above is ready
};

}  // namespace kpipe::dedup
