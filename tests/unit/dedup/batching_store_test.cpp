// The batching framework on its own, with a backend that records what it is asked: batches
// form while the backend is busy, answers reach their session's io_context, a closed session
// gets nothing, a full queue answers with an error, owners carry the process token.
#include "daemon/dedup/batching_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>

namespace kpipe::dedup {
namespace {

using namespace std::chrono_literals;

// Remembers ids like a store would, slowly when told to, so that requests pile up.
class RecordingBackend final : public Backend {
 public:
  struct Shared {
    std::mutex mutex;
    std::vector<size_t> batch_sizes;
    std::vector<std::string> owners;
    std::atomic<int> delay_ms{0};
    std::promise<void> entered;     // set when the first batch starts
    std::shared_future<void> gate;  // the first batch waits for it, when valid
  };
  explicit RecordingBackend(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  void run(std::span<Operation> ops, const Ttls&) override {
    if (first_) {
      first_ = false;
      shared_->entered.set_value();
      if (shared_->gate.valid()) shared_->gate.wait();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(shared_->delay_ms.load()));
    std::lock_guard lock(shared_->mutex);
    shared_->batch_sizes.push_back(ops.size());
    for (Operation& op : ops) {
      shared_->owners.push_back(op.owner);
      switch (op.kind) {
        case Operation::Kind::Reserve: {
          auto [it, inserted] = ids_.try_emplace(op.key, "r");
          op.result = inserted            ? ReserveResult::New
                      : it->second == "d" ? ReserveResult::Done
                                          : ReserveResult::InProgress;
          break;
        }
        case Operation::Kind::Confirm:
          ids_[op.key] = "d";
          break;
        case Operation::Kind::Release:
          ids_.erase(op.key);
          break;
      }
    }
  }

 private:
  std::shared_ptr<Shared> shared_;
  std::map<std::string, std::string> ids_;
  bool first_ = true;
};

// Runs `io` until `done` or 10 s pass (then the test fails rather than hangs).
template <class Pred>
bool runUntil(boost::asio::io_context& io, Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(5ms);
  }
  return done();
}

TEST(BatchingStoreTest, AnswersArriveOnTheSessionsIoContextInOrder) {
  auto shared = std::make_shared<RecordingBackend::Shared>();
  BatchingStore store("s", std::make_unique<RecordingBackend>(shared), Ttls{}, {}, nullptr);
  boost::asio::io_context io;
  auto session = store.open(io, "p");
  std::vector<std::string> answers;
  const auto io_thread = std::this_thread::get_id();
  session->reserve("a", "0:1", [&](const ReserveReply& r) {
    EXPECT_EQ(std::this_thread::get_id(), io_thread);
    answers.push_back(std::string("reserve ") + reserveResultName(r.result));
  });
  session->confirm(
      "a", [&](std::string_view error) { answers.push_back("confirm " + std::string(error)); });
  session->reserve("a", "0:2", [&](const ReserveReply& r) {
    answers.push_back(std::string("reserve ") + reserveResultName(r.result));
  });
  ASSERT_TRUE(runUntil(io, [&] { return answers.size() == 3; }));
  EXPECT_EQ(answers, (std::vector<std::string>{"reserve new", "confirm ", "reserve done"}));
}

TEST(BatchingStoreTest, RequestsThatArriveWhileABatchRunsFormTheNextBatch) {
  auto shared = std::make_shared<RecordingBackend::Shared>();
  std::promise<void> open_gate;
  shared->gate = open_gate.get_future().share();
  BatchingStore store("s", std::make_unique<RecordingBackend>(shared), Ttls{},
                      BatchingOptions{.max_queue = 10000, .max_batch = 300}, nullptr);
  boost::asio::io_context io;
  auto session = store.open(io, "p");
  int answered = 0;
  session->reserve("first", "o", [&](const ReserveReply&) { ++answered; });
  shared->entered.get_future().wait();  // the first batch is running, and waits
  for (int i = 0; i < 1000; ++i) {
    session->reserve("id-" + std::to_string(i), "o", [&](const ReserveReply&) { ++answered; });
  }
  open_gate.set_value();
  ASSERT_TRUE(runUntil(io, [&] { return answered == 1001; }));
  std::lock_guard lock(shared->mutex);
  EXPECT_EQ(shared->batch_sizes, (std::vector<size_t>{1, 300, 300, 300, 100}));
}

TEST(BatchingStoreTest, KeysAreNamespacedAndOwnersCarryTheProcessToken) {
  auto shared = std::make_shared<RecordingBackend::Shared>();
  BatchingStore store("s", std::make_unique<RecordingBackend>(shared), Ttls{}, {}, nullptr);
  boost::asio::io_context io;
  auto a = store.open(io, "pipeline-a");
  auto b = store.open(io, "pipeline-b");
  std::vector<ReserveResult> results;
  a->reserve("same-id", "3:17", [&](const ReserveReply& r) { results.push_back(r.result); });
  b->reserve("same-id", "3:17", [&](const ReserveReply& r) { results.push_back(r.result); });
  ASSERT_TRUE(runUntil(io, [&] { return results.size() == 2; }));
  EXPECT_EQ(results, (std::vector<ReserveResult>{ReserveResult::New, ReserveResult::New}));
  std::lock_guard lock(shared->mutex);
  ASSERT_FALSE(shared->owners.empty());
  EXPECT_EQ(shared->owners[0], store.instanceToken() + "/3:17");
}

TEST(BatchingStoreTest, AClosedSessionGetsNoAnswer) {
  auto shared = std::make_shared<RecordingBackend::Shared>();
  shared->delay_ms = 50;
  BatchingStore store("s", std::make_unique<RecordingBackend>(shared), Ttls{}, {}, nullptr);
  boost::asio::io_context io;
  auto session = store.open(io, "p");
  bool answered = false;
  session->reserve("a", "o", [&](const ReserveReply&) { answered = true; });
  session.reset();  // e.g. its pipeline stopped
  std::this_thread::sleep_for(150ms);
  io.run_for(50ms);
  EXPECT_FALSE(answered);
}

TEST(BatchingStoreTest, AFullQueueAnswersWithAnErrorNotInsideTheCall) {
  auto shared = std::make_shared<RecordingBackend::Shared>();
  std::promise<void> open_gate;
  shared->gate = open_gate.get_future().share();
  BatchingStore store("s", std::make_unique<RecordingBackend>(shared), Ttls{},
                      BatchingOptions{.max_queue = 2, .max_batch = 10}, nullptr);
  boost::asio::io_context io;
  auto session = store.open(io, "p");
  std::vector<std::string> errors;
  auto record = [&](const ReserveReply& r) { errors.push_back(r.error); };
  session->reserve("running", "o", record);
  shared->entered.get_future().wait();
  session->reserve("q1", "o", record);
  session->reserve("q2", "o", record);
  session->reserve("over", "o", record);
  EXPECT_TRUE(errors.empty()) << "answers never come inside the call";
  open_gate.set_value();
  ASSERT_TRUE(runUntil(io, [&] { return errors.size() == 4; }));
  EXPECT_EQ(std::count(errors.begin(), errors.end(), "store queue full"), 1);
  EXPECT_EQ(std::count(errors.begin(), errors.end(), ""), 3);
}

TEST(BatchingStoreTest, StoppingRunsOneMoreBatchAndAnswersTheRestWithAnError) {
  auto shared = std::make_shared<RecordingBackend::Shared>();
  std::promise<void> open_gate;
  shared->gate = open_gate.get_future().share();
  boost::asio::io_context io;
  std::vector<std::string> errors;
  std::unique_ptr<Session> session;
  std::thread opener;
  {
    BatchingStore store("s", std::make_unique<RecordingBackend>(shared), Ttls{},
                        BatchingOptions{.max_queue = 100, .max_batch = 1}, nullptr);
    session = store.open(io, "p");
    auto record = [&](std::string_view error) { errors.emplace_back(error); };
    session->confirm("running", record);
    shared->entered.get_future().wait();
    session->confirm("next", record);
    session->confirm("after", record);
    opener = std::thread([&] {
      std::this_thread::sleep_for(50ms);
      open_gate.set_value();
    });
    // The destructor waits for the running batch, runs one more, and answers the rest.
  }
  opener.join();
  ASSERT_TRUE(runUntil(io, [&] { return errors.size() == 3; }));
  EXPECT_EQ(errors, (std::vector<std::string>{"", "", "store s is shutting down"}));
}

}  // namespace
}  // namespace kpipe::dedup
