#include "daemon/dedup/redis_store.h"

#include "daemon/observe/log.h"

#include <hiredis/hiredis.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace kpipe::dedup {
namespace log = observe::log;

namespace {

// KEYS[1]: the id's key; ARGV[1]: the owner; ARGV[2]: the reservation's time to live (ms).
// 0: New, 1: InProgress, 2: Done. The owner's own reservation counts as New (its earlier answer
// was lost) and lives on from now. A missing value after a failed SET NX cannot happen (time
// stands still inside a script); if it did, InProgress makes the caller ask again.
constexpr std::string_view kReserveScript = R"lua(
local mine = 'r:' .. ARGV[1]
if redis.call('SET', KEYS[1], mine, 'NX', 'PX', ARGV[2]) then return 0 end
local held = redis.call('GET', KEYS[1])
if held == 'd' then return 2 end
if held == mine then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
return 1
)lua";

// KEYS[1]: the id's key; ARGV[1]: the owner. Another owner's reservation and a confirmed id
// must survive.
constexpr std::string_view kReleaseScript = R"lua(
if redis.call('GET', KEYS[1]) == 'r:' .. ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

constexpr std::array<ReserveResult, 3> kReserveResults = {
    ReserveResult::New, ReserveResult::InProgress, ReserveResult::Done};

// A connect that failed is not tried again sooner, so that a Redis that is down is not
// hammered by every batch.
constexpr auto kReconnectInterval = std::chrono::milliseconds(100);

std::atomic<uint64_t> round_trips{0};

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

timeval toTimeval(std::chrono::milliseconds timeout) {
  const auto ms = std::max<int64_t>(timeout.count(), 1);
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
}

// Redis refuses a PX of 0.
std::string toMillis(std::chrono::milliseconds ttl) {
  return std::to_string(std::max<int64_t>(ttl.count(), 1));
}

std::string_view replyText(const redisReply& reply) {
  return reply.str == nullptr ? std::string_view() : std::string_view(reply.str, reply.len);
}

// The connection is still usable after a failed append (nothing was written), but the commands
// before it in the output buffer would be sent without their operations waiting for replies:
// callers drop the connection instead.
bool append(redisContext& context, std::initializer_list<std::string_view> args) {
  std::array<const char*, 6> argv;
  std::array<size_t, 6> lengths;
  assert(args.size() <= argv.size());
  size_t n = 0;
  for (std::string_view arg : args) {
    argv[n] = arg.data();
    lengths[n] = arg.size();
    ++n;
  }
  return redisAppendCommandArgv(&context, static_cast<int>(n), argv.data(), lengths.data()) ==
         REDIS_OK;
}

class RedisBackend final : public Backend {
 public:
  explicit RedisBackend(const config::StoreSpec& spec)
      : name_(spec.name),
        redis_(spec.redis),
        timeout_(spec.timeout),
        prefix_(spec.prefix),
        where_(spec.redis.display.empty()
                   ? "redis://" + spec.redis.host + ":" + std::to_string(spec.redis.port) + "/" +
                         std::to_string(spec.redis.db)
                   : spec.redis.display) {}

  void run(std::span<Operation> ops, const Ttls& ttls) override {
    if (!sigpipe_blocked_) {
      // hiredis writes with write(2): a Redis that closed the connection would kill the
      // process with SIGPIPE. Blocked on this thread only, the write fails with EPIPE instead.
      sigset_t sigpipe;
      sigemptyset(&sigpipe);
      sigaddset(&sigpipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);
      sigpipe_blocked_ = true;
    }
    if (!context_ && !connect()) {
      for (Operation& op : ops) op.error = last_error_;
      return;
    }
    const std::string reservation_ms = toMillis(ttls.reservation);
    const std::string done_ms = toMillis(ttls.done);
    std::vector<Operation*> pending;
    pending.reserve(ops.size());
    for (Operation& op : ops) pending.push_back(&op);
    pending = roundTrip(pending, Attempt::First, reservation_ms, done_ms);
    // Scripts vanish from Redis's cache on SCRIPT FLUSH or a failover to a replica that never
    // loaded them. Both are loaded again (under the same SHA1s), so that they stay cached
    // together: were only one cached, a batch could run a release after a reserve of the same
    // key that followed it.
    if (!pending.empty() && context_) {
      roundTrip(pending, Attempt::AfterLoadingScripts, reservation_ms, done_ms);
    }
  }

 private:
  enum class Attempt { First, AfterLoadingScripts };

  // Sends `ops` as one pipeline and reads every reply. On a lost connection the ops without a
  // reply get its error and the connection is dropped. Returns the ops whose script was not in
  // Redis's cache on the first attempt: they did not run.
  std::vector<Operation*> roundTrip(const std::vector<Operation*>& ops, Attempt attempt,
                                    const std::string& reservation_ms, const std::string& done_ms) {
    size_t script_loads = 0;
    bool appended = true;
    if (attempt == Attempt::AfterLoadingScripts) {
      for (std::string_view script : {kReserveScript, kReleaseScript}) {
        appended = appended && append(*context_, {"SCRIPT", "LOAD", script});
        ++script_loads;
      }
    }
    for (Operation* op : ops) {
      key_.assign(prefix_).append(op->key);
      switch (op->kind) {
        case Operation::Kind::Reserve:
          appended = appended && append(*context_, {"EVALSHA", reserve_sha_, "1", key_, op->owner,
                                                    reservation_ms});
          break;
        case Operation::Kind::Confirm:
          appended = appended && append(*context_, {"SET", key_, "d", "PX", done_ms});
          break;
        case Operation::Kind::Release:
          appended = appended && append(*context_, {"EVALSHA", release_sha_, "1", key_, op->owner});
          break;
      }
    }
    if (!appended) {
      for (Operation* op : ops) op->error = where_ + ": cannot build a redis command";
      disconnect();
      return {};
    }
    round_trips.fetch_add(1, std::memory_order_relaxed);
    std::vector<Operation*> noscript;
    for (size_t i = 0; i < script_loads + ops.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(context_.get(), &raw) != REDIS_OK || raw == nullptr) {
        const std::string error = connectionError(errno);
        for (size_t j = std::max(i, script_loads) - script_loads; j < ops.size(); ++j) {
          ops[j]->error = error;
        }
        // They did not run either, and there is no second attempt without a connection: an
        // operation left without an error would read as New.
        for (Operation* op : noscript) op->error = error;
        noscript.clear();
        log::warn("redis connection lost", {{"store", name_}, {"error", error}});
        disconnect();
        return noscript;
      }
      ReplyPtr reply(static_cast<redisReply*>(raw));
      // A script that failed to load shows in its operations' replies (NOSCRIPT).
      if (i < script_loads) continue;
      Operation& op = *ops[i - script_loads];
      if (attempt == Attempt::First && op.kind != Operation::Kind::Confirm &&
          reply->type == REDIS_REPLY_ERROR && replyText(*reply).starts_with("NOSCRIPT")) {
        noscript.push_back(&op);
        continue;
      }
      apply(op, *reply);
    }
    return noscript;
  }

  void apply(Operation& op, const redisReply& reply) const {
    if (reply.type == REDIS_REPLY_ERROR) {
      op.error = where_ + ": " + std::string(replyText(reply));
      return;
    }
    switch (op.kind) {
      case Operation::Kind::Reserve:
        if (reply.type == REDIS_REPLY_INTEGER && reply.integer >= 0 &&
            reply.integer < static_cast<long long>(kReserveResults.size())) {
          op.result = kReserveResults[static_cast<size_t>(reply.integer)];
          return;
        }
        break;
      case Operation::Kind::Confirm:
        if (reply.type == REDIS_REPLY_STATUS) return;
        break;
      case Operation::Kind::Release:
        if (reply.type == REDIS_REPLY_INTEGER) return;
        break;
    }
    op.error = where_ + ": unexpected reply of type " + std::to_string(reply.type);
  }

  // Connects, authenticates, selects the database and loads the scripts; false, with
  // last_error_ set, when that failed now or less than kReconnectInterval ago. A connection
  // that was lost is connected again at once.
  bool connect() {
    if (std::chrono::steady_clock::now() < next_connect_) return false;
    const timeval timeout = toTimeval(timeout_);
    context_.reset(redisConnectWithTimeout(redis_.host.c_str(), redis_.port, timeout));
    if (!context_) {
      fail(where_ + ": cannot allocate a redis context");
      return false;
    }
    if (context_->err != 0) {
      fail(where_ + ": " + context_->errstr);
      return false;
    }
    // Bounds every later read and write: a Redis that stops answering fails the batch.
    if (redisSetTimeout(context_.get(), timeout) != REDIS_OK) {
      fail(connectionError(errno));
      return false;
    }
    if (!redis_.password.empty()) {
      const bool authenticated =
          redis_.username.empty()
              ? setupCommand({"AUTH", redis_.password}) != nullptr
              : setupCommand({"AUTH", redis_.username, redis_.password}) != nullptr;
      if (!authenticated) return false;
    }
    if (redis_.db != 0 && !setupCommand({"SELECT", std::to_string(redis_.db)})) return false;
    for (auto [script, sha] :
         {std::pair{kReserveScript, &reserve_sha_}, std::pair{kReleaseScript, &release_sha_}}) {
      ReplyPtr reply = setupCommand({"SCRIPT", "LOAD", script});
      if (!reply) return false;
      if (reply->type != REDIS_REPLY_STRING) {
        fail(where_ + ": SCRIPT LOAD gave a reply of type " + std::to_string(reply->type));
        return false;
      }
      sha->assign(replyText(*reply));
    }
    if (!last_error_.empty()) log::info("redis connected", {{"store", name_}, {"redis", where_}});
    last_error_.clear();
    return true;
  }

  // A command of the connection's setup: its reply, or null once fail() has dropped it.
  ReplyPtr setupCommand(std::initializer_list<std::string_view> args) {
    if (!append(*context_, args)) {
      fail(where_ + ": cannot build a redis command");
      return nullptr;
    }
    void* raw = nullptr;
    if (redisGetReply(context_.get(), &raw) != REDIS_OK || raw == nullptr) {
      fail(connectionError(errno));
      return nullptr;
    }
    ReplyPtr reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR) {
      fail(where_ + ": " + std::string(replyText(*reply)));
      return nullptr;
    }
    return reply;
  }

  // A failed connect: logged once until a connect succeeds, so a long outage is one line.
  void fail(std::string error) {
    if (last_error_.empty()) {
      log::warn("cannot connect to redis", {{"store", name_}, {"error", error}});
    }
    last_error_ = std::move(error);
    next_connect_ = std::chrono::steady_clock::now() + kReconnectInterval;
    disconnect();
  }

  void disconnect() { context_.reset(); }

  // Called right after the failed call, with its errno.
  std::string connectionError(int saved_errno) const {
    if (context_ && context_->err == REDIS_ERR_IO &&
        (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
      return where_ + ": no answer within " + std::to_string(timeout_.count()) + " ms";
    }
    if (context_ && context_->err != 0) return where_ + ": " + context_->errstr;
    return where_ + ": connection failed";
  }

  const std::string name_;
  const config::StoreSpec::Redis redis_;
  const std::chrono::milliseconds timeout_;
  const std::string prefix_;
  const std::string where_;  // the url without the password: errors and logs name it
  ContextPtr context_;       // null until connected, and again after the connection failed
  std::string reserve_sha_;
  std::string release_sha_;
  std::string last_error_;  // why the last connect failed; empty while connected
  std::chrono::steady_clock::time_point next_connect_;
  std::string key_;  // reused across operations: a batch builds thousands of keys
  bool sigpipe_blocked_ = false;
};

}  // namespace

std::unique_ptr<Store> makeRedisStore(const config::StoreSpec& spec, observe::Metrics* metrics,
                                      BatchingOptions options) {
  return std::make_unique<BatchingStore>(spec.name, std::make_unique<RedisBackend>(spec),
                                         Ttls{spec.ttl, spec.reservation_ttl}, options, metrics);
}

uint64_t redisRoundTripsForTest() { return round_trips.load(std::memory_order_relaxed); }

}  // namespace kpipe::dedup
