// The LMDB store against a real database in a temporary directory: the protocol (owners,
// TTLs, namespaces), durability across a reopen and a SIGKILL, the sweep, a full map and long
// ids. Answers come on an io_context run with a deadline, so that a lost answer fails the test.
#include "daemon/dedup/lmdb_store.h"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

namespace kpipe::dedup {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "kpipe-lmdb-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs `io` until `done` or 10 s pass.
template <class Pred>
bool runUntil(boost::asio::io_context& io, Pred done) {
  auto guard = boost::asio::make_work_guard(io);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  io.restart();
  while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
  return done();
}

// Entries in one table of the database at `path`; the store must be closed (LMDB forbids
// opening an environment twice in one process).
size_t countEntries(const fs::path& path, const char* table) {
  MDB_env* env = nullptr;
  EXPECT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 2);
  size_t entries = 0;
  if (mdb_env_open(env, path.c_str(), MDB_RDONLY, 0600) == 0) {
    MDB_txn* txn = nullptr;
    MDB_dbi dbi;
    MDB_stat stat;
    if (mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0) {
      if (mdb_dbi_open(txn, table, 0, &dbi) == 0 && mdb_stat(txn, dbi, &stat) == 0) {
        entries = stat.ms_entries;
      }
      mdb_txn_abort(txn);
    }
  } else {
    ADD_FAILURE() << "cannot open " << path;
  }
  mdb_env_close(env);
  return entries;
}

class LmdbStoreTest : public ::testing::Test {
 protected:
  LmdbStoreTest() {
    spec_.name = "durable";
    spec_.type = config::StoreType::Lmdb;
    spec_.path = dir_.path() / "db";
    spec_.ttl = 1h;
    spec_.reservation_ttl = 1min;
    spec_.map_size = 64 << 20;
  }

  std::unique_ptr<Store> open(BatchingOptions options = {}) {
    auto made = makeLmdbStore(spec_, nullptr, options);
    if (auto* error = std::get_if<std::string>(&made)) {
      ADD_FAILURE() << *error;
      return nullptr;
    }
    return std::move(std::get<std::unique_ptr<Store>>(made));
  }

  ReserveReply reserve(Session& session, std::string_view id, std::string_view owner = "o1") {
    std::optional<ReserveReply> reply;
    session.reserve(id, owner, [&](const ReserveReply& r) { reply = r; });
    if (!runUntil(io_, [&] { return reply.has_value(); })) {
      ADD_FAILURE() << "no answer to reserve " << id.substr(0, 40);
      return {ReserveResult::New, "no answer"};
    }
    return *reply;
  }
  ReserveResult reserved(Session& session, std::string_view id, std::string_view owner = "o1") {
    const ReserveReply reply = reserve(session, id, owner);
    EXPECT_EQ(reply.error, "");
    return reply.result;
  }
  std::string confirm(Session& session, std::string_view id) {
    std::optional<std::string> error;
    session.confirm(id, [&](std::string_view e) { error = std::string(e); });
    if (!runUntil(io_, [&] { return error.has_value(); })) return "no answer";
    return *error;
  }

  TempDir dir_;
  config::StoreSpec spec_;
  boost::asio::io_context io_;
};

TEST_F(LmdbStoreTest, ReserveConfirmThenDuplicate) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto session = store->open(io_, "p");
  EXPECT_EQ(reserved(*session, "a"), ReserveResult::New);
  EXPECT_EQ(confirm(*session, "a"), "");
  EXPECT_EQ(reserved(*session, "a"), ReserveResult::Done);
  EXPECT_EQ(reserved(*session, "a", "o2"), ReserveResult::Done);
  EXPECT_EQ(reserved(*session, "b"), ReserveResult::New);
}

TEST_F(LmdbStoreTest, OwnersOfAReservation) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto session = store->open(io_, "p");
  ASSERT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);
  // the same owner asking again (its answer was lost) may go ahead; another may not
  EXPECT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);
  EXPECT_EQ(reserved(*session, "a", "o2"), ReserveResult::InProgress);
  // a release by another owner leaves the reservation in place
  session->release("a", "o2");
  EXPECT_EQ(reserved(*session, "a", "o2"), ReserveResult::InProgress);
  // its owner's release frees it
  session->release("a", "o1");
  EXPECT_EQ(reserved(*session, "a", "o2"), ReserveResult::New);
  // a confirmed id is not released
  ASSERT_EQ(confirm(*session, "a"), "");
  session->release("a", "o2");
  EXPECT_EQ(reserved(*session, "a", "o3"), ReserveResult::Done);
}

TEST_F(LmdbStoreTest, OperationsOfOneBatchSeeEachOther) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto session = store->open(io_, "p");
  // given: requests sent without waiting, so that they share batches
  std::vector<ReserveReply> replies;
  std::vector<std::string> confirms;
  session->reserve("a", "o1", [&](const ReserveReply& r) { replies.push_back(r); });
  session->reserve("a", "o2", [&](const ReserveReply& r) { replies.push_back(r); });
  session->confirm("a", [&](std::string_view e) { confirms.emplace_back(e); });
  session->reserve("a", "o2", [&](const ReserveReply& r) { replies.push_back(r); });
  ASSERT_TRUE(runUntil(io_, [&] { return replies.size() == 3 && confirms.size() == 1; }));
  EXPECT_EQ(replies[0].result, ReserveResult::New);
  EXPECT_EQ(replies[1].result, ReserveResult::InProgress);
  EXPECT_EQ(confirms[0], "");
  EXPECT_EQ(replies[2].result, ReserveResult::Done);
}

TEST_F(LmdbStoreTest, ReservationsAndIdsExpire) {
  spec_.reservation_ttl = 200ms;
  spec_.ttl = 400ms;
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto session = store->open(io_, "p");
  ASSERT_EQ(reserved(*session, "a", "o1"), ReserveResult::New);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(reserved(*session, "a", "o2"), ReserveResult::New);  // o1's reservation expired
  ASSERT_EQ(confirm(*session, "a"), "");
  EXPECT_EQ(reserved(*session, "a", "o3"), ReserveResult::Done);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(reserved(*session, "a", "o3"), ReserveResult::New);
}

TEST_F(LmdbStoreTest, NamespacesAreSeparate) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto one = store->open(io_, "p1");
  auto two = store->open(io_, "p2");
  ASSERT_EQ(reserved(*one, "a"), ReserveResult::New);
  ASSERT_EQ(confirm(*one, "a"), "");
  EXPECT_EQ(reserved(*two, "a"), ReserveResult::New);
  EXPECT_EQ(reserved(*one, "a"), ReserveResult::Done);
}

TEST_F(LmdbStoreTest, IdsSurviveAReopen) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    auto session = store->open(io_, "p");
    ASSERT_EQ(reserved(*session, "done"), ReserveResult::New);
    ASSERT_EQ(confirm(*session, "done"), "");
    ASSERT_EQ(reserved(*session, "held"), ReserveResult::New);
  }
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto session = store->open(io_, "p");
  EXPECT_EQ(reserved(*session, "done"), ReserveResult::Done);
  // the old process's reservation lives on until it expires (its owner is not ours)
  EXPECT_EQ(reserved(*session, "held"), ReserveResult::InProgress);
  EXPECT_EQ(reserved(*session, "other"), ReserveResult::New);
}

TEST_F(LmdbStoreTest, ConfirmedIdsSurviveSigkill) {
  // given: a child process that confirms an id, says so, then is killed
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    auto made = makeLmdbStore(spec_, nullptr, {});
    if (made.index() != 0) _exit(2);
    auto& store = *std::get<0>(made);
    boost::asio::io_context io;
    auto session = store.open(io, "p");
    std::optional<ReserveReply> reply;
    std::optional<std::string> confirmed;
    session->reserve("k", "o", [&](const ReserveReply& r) { reply = r; });
    if (!runUntil(io, [&] { return reply.has_value(); }) || reply->result != ReserveResult::New) {
      _exit(3);
    }
    session->confirm("k", [&](std::string_view e) { confirmed = std::string(e); });
    if (!runUntil(io, [&] { return confirmed.has_value(); }) || !confirmed->empty()) _exit(4);
    if (write(ready[1], "x", 1) != 1) _exit(5);
    for (;;) pause();
  }
  close(ready[1]);
  pollfd wait_ready{ready[0], POLLIN, 0};
  const bool said_ready = poll(&wait_ready, 1, 10'000) == 1;
  char byte = 0;
  const bool confirmed = said_ready && read(ready[0], &byte, 1) == 1;
  close(ready[0]);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(confirmed) << "child exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  // when: the database is opened again
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto session = store->open(io_, "p");
  // then: the id is remembered
  EXPECT_EQ(reserved(*session, "k"), ReserveResult::Done);
}

TEST_F(LmdbStoreTest, BothTablesHoldEachIdOnce) {
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    auto session = store->open(io_, "p");
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(reserved(*session, "id" + std::to_string(i)), ReserveResult::New);
      ASSERT_EQ(confirm(*session, "id" + std::to_string(i)), "");
    }
    ASSERT_EQ(reserved(*session, "released"), ReserveResult::New);
    session->release("released", "o1");
    ASSERT_EQ(reserved(*session, "kept"), ReserveResult::New);
  }
  EXPECT_EQ(countEntries(spec_.path, "ids"), 51u);
  EXPECT_EQ(countEntries(spec_.path, "expiries"), 51u);
}

TEST_F(LmdbStoreTest, SweepDeletesExpiredIds) {
  // given: ids that expire soon, and one that does not
  spec_.ttl = 100ms;
  spec_.reservation_ttl = 100ms;
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    auto session = store->open(io_, "p");
    for (int i = 0; i < 100; ++i) {
      ASSERT_EQ(reserved(*session, "id" + std::to_string(i)), ReserveResult::New);
      ASSERT_EQ(confirm(*session, "id" + std::to_string(i)), "");
    }
    // when: the store stays idle past their expiry (it sweeps every 100 ms when idle)
    std::this_thread::sleep_for(600ms);
  }
  // then: both tables are empty
  EXPECT_EQ(countEntries(spec_.path, "ids"), 0u);
  EXPECT_EQ(countEntries(spec_.path, "expiries"), 0u);
}

TEST_F(LmdbStoreTest, FullMapAnswersWithErrorsAndKeepsServing) {
  // given: a 1 MiB map, a confirmed id, and reservations that expire soon
  spec_.map_size = 1 << 20;
  spec_.reservation_ttl = 300ms;
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto session = store->open(io_, "p");
  ASSERT_EQ(reserved(*session, "kept"), ReserveResult::New);
  ASSERT_EQ(confirm(*session, "kept"), "");
  // when: more long ids are reserved than fit, 100 at a time
  std::string error;
  for (int round = 0; round < 100 && error.empty(); ++round) {
    std::vector<ReserveReply> replies;
    for (int i = 0; i < 100; ++i) {
      const std::string id = std::to_string(round * 100 + i) + std::string(400, 'x');
      session->reserve(id, "o", [&](const ReserveReply& r) { replies.push_back(r); });
    }
    ASSERT_TRUE(runUntil(io_, [&] { return replies.size() == 100; }));
    for (const ReserveReply& r : replies) {
      if (!r.error.empty()) error = r.error;
    }
  }
  // then: the store answers with an error naming the cause and the path
  EXPECT_NE(error.find("MDB_MAP_FULL"), std::string::npos) << error;
  EXPECT_NE(error.find(spec_.path.string()), std::string::npos) << error;
  // and keeps answering: a batch that writes nothing still reads
  EXPECT_EQ(reserved(*session, "kept", "o2"), ReserveResult::Done);
  // and once the reservations expire and are swept, there is room again
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(reserved(*session, "after", "o"), ReserveResult::New);
  EXPECT_EQ(reserved(*session, "kept", "o2"), ReserveResult::Done);
}

TEST_F(LmdbStoreTest, LongIds) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto session = store->open(io_, "p");
  for (size_t length : {400u, 1000u}) {
    const std::string id(length, 'i');
    EXPECT_EQ(reserved(*session, id), ReserveResult::New) << length;
    EXPECT_EQ(confirm(*session, id), "") << length;
    EXPECT_EQ(reserved(*session, id), ReserveResult::Done) << length;
  }
  // ids hashed to the same key length stay apart, even with a long common prefix
  const std::string prefix(900, 'p');
  ASSERT_EQ(reserved(*session, prefix + "a"), ReserveResult::New);
  ASSERT_EQ(confirm(*session, prefix + "a"), "");
  EXPECT_EQ(reserved(*session, prefix + "b"), ReserveResult::New);
  EXPECT_EQ(reserved(*session, prefix + "a"), ReserveResult::Done);
}

TEST_F(LmdbStoreTest, CreatesAPrivateDirectory) {
  spec_.path = dir_.path() / "a" / "b";
  auto store = open();
  ASSERT_NE(store, nullptr);
  struct stat info {};
  ASSERT_EQ(stat(spec_.path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
}

TEST_F(LmdbStoreTest, ErrorNamesAPathThatCannotBeCreated) {
  // given: a path under a regular file (root may write anywhere, but not there)
  const fs::path file = dir_.path() / "file";
  { std::ofstream(file) << "x"; }
  spec_.path = file / "db";
  // when
  auto made = makeLmdbStore(spec_, nullptr);
  // then
  ASSERT_EQ(made.index(), 1u);
  EXPECT_NE(std::get<1>(made).find(spec_.path.string()), std::string::npos) << std::get<1>(made);
}

}  // namespace
}  // namespace kpipe::dedup
