#include "daemon/dedup/lmdb_store.h"

#include "daemon/dedup/hash.h"
#include "daemon/observe/log.h"

#include <lmdb.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

namespace kpipe::dedup {
namespace {
namespace log = observe::log;

constexpr size_t kExpiryBytes = 8;
constexpr size_t kMaxDirectKey = 480;
constexpr size_t kLongKeyPrefix = 464;
constexpr size_t kLongKeySize = kLongKeyPrefix + 32;
constexpr size_t kSweepBatch = 10'000;
constexpr uint64_t kNoExpiry = 0;  // wall-clock expiries are never the epoch
constexpr char kReserved = 'R';
constexpr char kDone = 'D';

struct EnvClose {
  void operator()(MDB_env* env) const { mdb_env_close(env); }
};
using EnvPtr = std::unique_ptr<MDB_env, EnvClose>;

// A write transaction: aborted unless committed.
class WriteTxn {
 public:
  explicit WriteTxn(MDB_env* env) : status_(mdb_txn_begin(env, nullptr, 0, &txn_)) {
    if (status_ != 0) txn_ = nullptr;
  }
  ~WriteTxn() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  WriteTxn(const WriteTxn&) = delete;
  WriteTxn& operator=(const WriteTxn&) = delete;

  int status() const { return status_; }  // of mdb_txn_begin
  MDB_txn* get() const { return txn_; }
  // LMDB frees the transaction whether the commit succeeds or not.
  int commit() { return mdb_txn_commit(std::exchange(txn_, nullptr)); }

 private:
  MDB_txn* txn_ = nullptr;
  int status_;
};

// Must end before its transaction does: LMDB frees a write transaction's cursors with it.
class Cursor {
 public:
  Cursor(MDB_txn* txn, MDB_dbi dbi) : status_(mdb_cursor_open(txn, dbi, &cursor_)) {
    if (status_ != 0) cursor_ = nullptr;
  }
  ~Cursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  int status() const { return status_; }
  MDB_cursor* get() const { return cursor_; }

 private:
  MDB_cursor* cursor_ = nullptr;
  int status_;
};

MDB_val val(std::string_view bytes) {
  return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}
std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

void putExpiry(char* out, uint64_t ms) {
  for (size_t i = 0; i < kExpiryBytes; ++i) {
    out[i] = static_cast<char>(ms >> (8 * (kExpiryBytes - 1 - i)));
  }
}
uint64_t getExpiry(std::string_view bytes) {
  uint64_t ms = 0;
  for (size_t i = 0; i < kExpiryBytes; ++i) ms = (ms << 8) | static_cast<unsigned char>(bytes[i]);
  return ms;
}

// An ids value. `owner` points into the map: valid until the transaction next writes.
struct Record {
  uint64_t expires = 0;
  char state = kReserved;
  std::string_view owner;
};
std::optional<Record> decode(const MDB_val& v) {
  const std::string_view bytes = view(v);
  if (bytes.size() < kExpiryBytes + 1) return std::nullopt;  // not ours: taken as absent
  return Record{getExpiry(bytes), bytes[kExpiryBytes], bytes.substr(kExpiryBytes + 1)};
}

uint64_t wallMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}
uint64_t after(uint64_t now, std::chrono::milliseconds ttl) {
  return now + static_cast<uint64_t>(std::max<int64_t>(0, ttl.count()));
}

class LmdbBackend final : public Backend {
 public:
  LmdbBackend(std::string name, std::string path, EnvPtr env, MDB_dbi ids, MDB_dbi expiries)
      : name_(std::move(name)),
        path_(std::move(path)),
        env_(std::move(env)),
        ids_(ids),
        expiries_(expiries) {}

  void run(std::span<Operation> ops, const Ttls& ttls) override {
    const uint64_t now = wallMs();
    WriteTxn txn(env_.get());
    int rc = txn.status();
    for (size_t i = 0; rc == 0 && i < ops.size(); ++i) rc = apply(txn.get(), ops[i], now, ttls);
    if (rc == 0) rc = txn.commit();
    if (rc == 0) return;
    // The transaction is aborted as a whole: none of the batch happened.
    const std::string error = describe(rc);
    warnOnce(rc, "dedup batch failed", error);
    for (Operation& op : ops) op.error = error;
  }

  // Bounded work per call; a full map halves the next sweep, since deleting needs free pages
  // too, and success doubles it back.
  void idle() override {
    size_t swept = 0;
    const int rc = sweep(wallMs(), sweep_limit_, swept);
    if (rc == 0) {
      sweep_limit_ = std::min(kSweepBatch, sweep_limit_ * 2);
      return;
    }
    warnOnce(rc, "dedup sweep failed", describe(rc));
    if (rc == MDB_MAP_FULL) sweep_limit_ = std::max<size_t>(1, sweep_limit_ / 2);
  }
  std::chrono::milliseconds idleInterval() const override { return std::chrono::milliseconds(100); }

 private:
  int apply(MDB_txn* txn, Operation& op, uint64_t now, const Ttls& ttls) {
    const std::string_view key = storedKey(op.key);
    MDB_val k = val(key);
    MDB_val v;
    const int rc = mdb_get(txn, ids_, &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND) return rc;
    const std::optional<Record> old = rc == 0 ? decode(v) : std::nullopt;
    const uint64_t old_expiry = old ? old->expires : kNoExpiry;
    switch (op.kind) {
      case Operation::Kind::Reserve:
        if (old && old->expires > now) {
          if (old->state == kDone) {
            op.result = ReserveResult::Done;
            return 0;
          }
          if (old->owner != op.owner) {
            op.result = ReserveResult::InProgress;
            return 0;
          }
        }
        op.result = ReserveResult::New;
        return write(txn, key, old_expiry, after(now, ttls.reservation), kReserved, op.owner);
      case Operation::Kind::Confirm:
        return write(txn, key, old_expiry, after(now, ttls.done), kDone, {});
      case Operation::Kind::Release:
        if (!old || old->state != kReserved || old->owner != op.owner) return 0;
        if (int del = mdb_del(txn, ids_, &k, nullptr); del != 0) return del;
        return unindex(txn, key, old->expires);
    }
    return 0;
  }

  // `old_expiry`: the expiries entry to replace, kNoExpiry when there is none.
  int write(MDB_txn* txn, std::string_view key, uint64_t old_expiry, uint64_t expires, char state,
            std::string_view owner) {
    if (old_expiry != kNoExpiry && old_expiry != expires) {
      if (int rc = unindex(txn, key, old_expiry); rc != 0) return rc;
    }
    value_.resize(kExpiryBytes);
    putExpiry(value_.data(), expires);
    value_.push_back(state);
    value_.append(owner);
    MDB_val k = val(key);
    MDB_val v = val(value_);
    if (int rc = mdb_put(txn, ids_, &k, &v, 0); rc != 0) return rc;
    MDB_val ik = val(indexKey(key, expires));
    MDB_val empty{0, nullptr};
    return mdb_put(txn, expiries_, &ik, &empty, 0);
  }

  // An index entry that is already gone is not an error: a value we could not decode had none.
  int unindex(MDB_txn* txn, std::string_view key, uint64_t expires) {
    MDB_val ik = val(indexKey(key, expires));
    const int rc = mdb_del(txn, expiries_, &ik, nullptr);
    return rc == MDB_NOTFOUND ? 0 : rc;
  }

  // Deletes up to `limit` expired ids, earliest first, in one transaction.
  int sweep(uint64_t now, size_t limit, size_t& swept) {
    WriteTxn txn(env_.get());
    if (txn.status() != 0) return txn.status();
    {
      Cursor cursor(txn.get(), expiries_);
      if (cursor.status() != 0) return cursor.status();
      MDB_val ik;
      MDB_val unused;
      while (swept < limit) {
        // From the first entry each time rather than MDB_NEXT: the delete moved the cursor.
        int rc = mdb_cursor_get(cursor.get(), &ik, &unused, MDB_FIRST);
        if (rc == MDB_NOTFOUND) break;
        if (rc != 0) return rc;
        const std::string_view entry = view(ik);
        if (entry.size() >= kExpiryBytes) {
          const uint64_t expires = getExpiry(entry);
          if (expires > now) break;
          // Copied: the map memory ik points into may move once we write.
          key_.assign(entry.substr(kExpiryBytes));
          MDB_val k = val(key_);
          MDB_val v;
          rc = mdb_get(txn.get(), ids_, &k, &v);
          if (rc != 0 && rc != MDB_NOTFOUND) return rc;
          // An entry left behind by an undecodable value must not delete the id's newer life.
          const std::optional<Record> record = rc == 0 ? decode(v) : std::nullopt;
          if (record && record->expires == expires) {
            if (rc = mdb_del(txn.get(), ids_, &k, nullptr); rc != 0) return rc;
          }
        }
        if (rc = mdb_cursor_del(cursor.get(), 0); rc != 0) return rc;
        ++swept;
      }
    }
    return swept == 0 ? 0 : txn.commit();
  }

  std::string_view storedKey(std::string_view key) {
    if (key.size() <= kMaxDirectKey) return key;
    const Hash128 hash = hash128(key);
    char hex[33];
    snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(hash.high),
             static_cast<unsigned long long>(hash.low));
    long_key_.assign(key.substr(0, kLongKeyPrefix)).append(hex, 32);
    return long_key_;
  }

  std::string_view indexKey(std::string_view key, uint64_t expires) {
    index_key_.resize(kExpiryBytes);
    putExpiry(index_key_.data(), expires);
    index_key_.append(key);
    return index_key_;
  }

  std::string describe(int rc) const { return "lmdb " + path_ + ": " + mdb_strerror(rc); }

  void warnOnce(int rc, std::string_view what, const std::string& error) {
    if (!warned_.insert(rc).second) return;
    log::warn(what, {{"store", name_}, {"error", error}});
  }

  const std::string name_;
  const std::string path_;
  EnvPtr env_;
  const MDB_dbi ids_;
  const MDB_dbi expiries_;
  size_t sweep_limit_ = kSweepBatch;
  std::set<int> warned_;
  // Reused for every operation: no allocation per operation once they have grown.
  std::string value_;
  std::string index_key_;
  std::string long_key_;
  std::string key_;
};

}  // namespace

std::variant<std::unique_ptr<Store>, std::string> makeLmdbStore(const config::StoreSpec& spec,
                                                                observe::Metrics* metrics,
                                                                BatchingOptions options) {
  const std::string path = spec.path.string();
  const std::string what = "lmdb store " + spec.name + " at " + path + ": ";
  if (path.empty()) return "lmdb store " + spec.name + ": no path";
  std::error_code ec;
  const bool created = std::filesystem::create_directories(spec.path, ec);
  if (ec) return what + "cannot create the directory: " + ec.message();
  if (created) {
    std::filesystem::permissions(spec.path, std::filesystem::perms::owner_all, ec);
    if (ec) return what + "cannot make the directory private: " + ec.message();
  }

  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != 0) return what + mdb_strerror(rc);
  EnvPtr env(raw);
  if (int rc = mdb_env_set_maxdbs(env.get(), 2); rc != 0) return what + mdb_strerror(rc);
  if (int rc = mdb_env_set_mapsize(env.get(), spec.map_size); rc != 0) {
    return what + "map_size: " + mdb_strerror(rc);
  }
  if (int rc = mdb_env_open(env.get(), path.c_str(), 0, 0600); rc != 0) {
    return what + "cannot open: " + mdb_strerror(rc);
  }
  if (static_cast<size_t>(mdb_env_get_maxkeysize(env.get())) < kExpiryBytes + kLongKeySize) {
    return what + "this LMDB build's keys are too short";
  }
  // A reader that crashed (mdb_dump, mdb_stat killed) would pin old pages and make the map
  // fill up; clearing its slot costs nothing.
  int stale = 0;
  mdb_reader_check(env.get(), &stale);

  MDB_dbi ids = 0;
  MDB_dbi expiries = 0;
  {
    WriteTxn txn(env.get());
    int rc = txn.status();
    if (rc == 0) rc = mdb_dbi_open(txn.get(), "ids", MDB_CREATE, &ids);
    if (rc == 0) rc = mdb_dbi_open(txn.get(), "expiries", MDB_CREATE, &expiries);
    if (rc == 0) rc = txn.commit();
    if (rc != 0) return what + "cannot open the tables: " + mdb_strerror(rc);
  }
  auto backend = std::make_unique<LmdbBackend>(spec.name, path, std::move(env), ids, expiries);
  return std::make_unique<BatchingStore>(spec.name, std::move(backend),
                                         Ttls{spec.ttl, spec.reservation_ttl}, options, metrics);
}

}  // namespace kpipe::dedup
