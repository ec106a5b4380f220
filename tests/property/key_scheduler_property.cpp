// Properties of KeyScheduler, checked against a simulated worker: messages arrive (keys drawn
// from a small key set, so keys collide often) and random running messages finish. A model of
// which messages wait and run checks, for every ordering and several concurrency values:
// per-key order, the concurrency limit, work conservation, oldest-ready-first, exactly-once
// starts, takeWaiting(), and that a CommitTracker fed alongside never passes unfinished work.

#include "daemon/pipeline/commit_tracker.h"
#include "daemon/pipeline/key_scheduler.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace kpipe::config {
// Lets rapidcheck print the ordering in counterexamples (found by argument-dependent lookup).
[[maybe_unused]] static void showValue(Ordering ordering, std::ostream& os) {
  switch (ordering) {
    case Ordering::Key:
      os << "Ordering::Key";
      return;
    case Ordering::Partition:
      os << "Ordering::Partition";
      return;
    case Ordering::None:
      os << "Ordering::None";
      return;
  }
  os << "Ordering(" << static_cast<int>(ordering) << ")";
}
}  // namespace kpipe::config

namespace kpipe::pipeline {
namespace {

using config::Ordering;

// The scheduled item: carries its identity so the test can tell which message came back.
struct Msg {
  size_t id = 0;  // arrival index
  int64_t offset = 0;
  uint64_t key = 0;
};

enum class State { Waiting, Running, Done, Taken };

// Facts about one start, recorded at the moment the scheduler started the message.
struct Start {
  size_t id = 0;
  bool was_waiting = false;             // it was waiting (not running, done or taken out)
  bool key_was_running = false;         // a message with the same key was running
  bool older_same_key_waiting = false;  // an older message with the same key was still waiting
  // An older waiting message could have started instead (ordering key: one whose key was not
  // running; partition / none: any).
  bool older_eligible_waiting = false;
  size_t running_before = 0;  // messages running just before it started
};

// One generated operation: (roll, key index, pick, offset gap).
//   roll < arrive_pct: a message arrives with keys[key index], `gap` offsets after the previous;
//   otherwise: the running message number `pick` (modulo the number running) finishes.
// The takeWaiting() property also takes the waiting messages out when roll >= 97.
using Op = std::tuple<int, size_t, size_t, int64_t>;

struct Scenario {
  Ordering ordering = Ordering::Key;
  size_t concurrency = 1;
  int64_t first_offset = 0;
  int arrive_pct = 50;
  std::vector<uint64_t> keys;
  std::vector<Op> ops;
};

// A worker driving one KeyScheduler and one CommitTracker, plus a model of what runs and waits.
// It logs what it does (RC_LOG): rapidcheck prints the log of the smallest failing case.
class Sim {
 public:
  Sim(Ordering ordering, size_t concurrency, int64_t first_offset)
      : ordering_(ordering),
        limit_(ordering == Ordering::Partition || concurrency == 0 ? 1 : concurrency),
        sched_(ordering, concurrency),
        next_offset_(first_offset) {
    RC_LOG() << "KeyScheduler(" << rc::toString(ordering) << ", " << concurrency << ")\n";
  }

  // An arrival or a finish (nothing when it is a finish and nothing runs).
  void step(const Scenario& sc, const Op& op) {
    const auto& [roll, key_index, pick, gap] = op;
    if (roll < sc.arrive_pct) {
      arrive(sc.keys[key_index % sc.keys.size()], gap);
    } else {
      finish(pick);
    }
  }

  void arrive(uint64_t key, int64_t gap) {
    const Msg m{msgs_.size(), next_offset_, key};
    next_offset_ += gap;
    msgs_.push_back(m);
    state_.push_back(State::Waiting);
    start_count_.push_back(0);
    waiting_.insert(m.id);
    tracker_.begin(m.offset);
    const bool now = sched_.submit(m, key);
    RC_LOG() << "submit #" << m.id << " key " << key << " offset " << m.offset << " -> "
             << (now ? "starts" : "waits") << "\n";
    if (now) start(m);
  }

  // Finishes the running message number `pick` (modulo the number running). False: none runs.
  bool finish(size_t pick) {
    if (running_.empty()) return false;
    const size_t i = pick % running_.size();
    const size_t id = running_[i];
    running_[i] = running_.back();
    running_.pop_back();
    state_[id] = State::Done;
    const uint64_t key = msgs_[id].key;
    if (--running_keys_[key] == 0) running_keys_.erase(key);
    tracker_.complete(msgs_[id].offset);
    std::vector<Msg> started;
    sched_.finish(key, started);
    RC_LOG() << "finish #" << id << " key " << key << " -> starts" << ids(started) << "\n";
    for (const Msg& m : started) start(m);
    return true;
  }

  // takeWaiting(): returns what it handed out; marks those messages taken (never to start).
  std::vector<Msg> take() {
    std::vector<Msg> out;
    sched_.takeWaiting(out);
    RC_LOG() << "takeWaiting ->" << ids(out) << "\n";
    for (const Msg& m : out) {
      checkIntact(m);
      if (state_[m.id] == State::Waiting) {
        state_[m.id] = State::Taken;
        waiting_.erase(m.id);
      }
    }
    return out;
  }

  // Finishes every running message (and what they start) in a scrambled order.
  void finishAll() {
    while (!running_.empty()) finish(drain_pick_++ * 2654435761u);
  }

  // A waiting message the scheduler could start now but does not (none when work-conserving).
  std::optional<size_t> startableWaiting() const {
    if (running_.size() >= limit_) return std::nullopt;
    for (size_t w : waiting_) {
      if (ordering_ != Ordering::Key || running_keys_.count(msgs_[w].key) == 0) return w;
    }
    return std::nullopt;
  }

  // The commit position a correct tracker reports: the lowest unfinished (not done) offset,
  // one past the last offset when everything is done, kUnknown before any message.
  int64_t expectedCommitPosition() {
    while (first_unfinished_ < msgs_.size() && state_[first_unfinished_] == State::Done) {
      ++first_unfinished_;
    }
    if (msgs_.empty()) return CommitTracker::kUnknown;
    if (first_unfinished_ == msgs_.size()) return msgs_.back().offset + 1;
    return msgs_[first_unfinished_].offset;
  }

  // Offsets of messages that are waiting or running (or taken out, never finished).
  std::vector<int64_t> unfinishedOffsets() const {
    std::vector<int64_t> out;
    for (size_t id = 0; id < msgs_.size(); ++id) {
      if (state_[id] != State::Done) out.push_back(msgs_[id].offset);
    }
    return out;
  }

  size_t maxRunningPerKey() const {
    size_t most = 0;
    for (const auto& [key, n] : running_keys_) most = std::max(most, n);
    return most;
  }

  // Message ids in the order they started.
  std::vector<size_t> startOrder() const {
    std::vector<size_t> out;
    for (const Start& s : starts_) out.push_back(s.id);
    return out;
  }

  std::vector<Msg> waitingMsgs() const {
    std::vector<Msg> out;
    for (size_t w : waiting_) out.push_back(msgs_[w]);
    return out;
  }

  size_t limit() const { return limit_; }
  const KeyScheduler<Msg>& sched() const { return sched_; }
  const CommitTracker& tracker() const { return tracker_; }
  const std::vector<Msg>& msgs() const { return msgs_; }
  const std::vector<State>& states() const { return state_; }
  const std::vector<size_t>& startCount() const { return start_count_; }
  const std::vector<Start>& starts() const { return starts_; }
  size_t runningCount() const { return running_.size(); }
  size_t waitingCount() const { return waiting_.size(); }

 private:
  static std::string ids(const std::vector<Msg>& msgs) {
    std::string out;
    for (const Msg& m : msgs) out += " #" + std::to_string(m.id);
    return out;
  }

  void checkIntact(const Msg& m) const {
    RC_ASSERT(m.id < msgs_.size());  // an item that was never submitted
    RC_ASSERT(m.offset == msgs_[m.id].offset);
    RC_ASSERT(m.key == msgs_[m.id].key);
  }

  void start(const Msg& m) {
    checkIntact(m);
    Start s;
    s.id = m.id;
    s.was_waiting = state_[m.id] == State::Waiting;
    s.key_was_running = running_keys_.count(m.key) != 0;
    s.running_before = running_.size();
    for (size_t w : waiting_) {
      if (w >= m.id) break;
      if (msgs_[w].key == m.key) s.older_same_key_waiting = true;
      if (ordering_ != Ordering::Key || running_keys_.count(msgs_[w].key) == 0) {
        s.older_eligible_waiting = true;
      }
    }
    starts_.push_back(s);
    ++start_count_[m.id];
    if (!s.was_waiting) return;  // a duplicate or a taken one: recorded, the model stays as is
    state_[m.id] = State::Running;
    waiting_.erase(m.id);
    running_.push_back(m.id);
    ++running_keys_[m.key];
  }

  Ordering ordering_;
  size_t limit_;  // the concurrency the scheduler must honour
  KeyScheduler<Msg> sched_;
  CommitTracker tracker_;
  int64_t next_offset_;
  std::vector<Msg> msgs_;
  std::vector<State> state_;
  std::vector<size_t> start_count_;
  std::set<size_t> waiting_;                 // ids, oldest first
  std::vector<size_t> running_;              // ids, any order
  std::map<uint64_t, size_t> running_keys_;  // key -> messages of it running
  std::vector<Start> starts_;
  size_t first_unfinished_ = 0;
  uint64_t drain_pick_ = 1;
};

Ordering genOrdering() {
  return *rc::gen::element(Ordering::Key, Ordering::Partition, Ordering::None);
}

// 1, 2, a small random value (0 included: it means 1), or a large one (many keys running at
// once make the scheduler's key table grow and wrap its probe runs).
size_t genConcurrency() {
  return *rc::gen::oneOf(rc::gen::just<size_t>(1), rc::gen::just<size_t>(2),
                         rc::gen::inRange<size_t>(0, 9), rc::gen::inRange<size_t>(50, 300));
}

// Up to a few hundred operations over 1..6 keys (random 64-bit values, so two may collide), or
// over up to 400 keys (so that the key table grows, and erases shift entries back).
Scenario genScenario(Ordering ordering, size_t concurrency) {
  Scenario sc;
  sc.ordering = ordering;
  sc.concurrency = concurrency;
  sc.first_offset = *rc::gen::inRange<int64_t>(0, 1'000'000);
  sc.arrive_pct = *rc::gen::inRange(20, 90);  // low: mostly drained; high: long backlogs
  const size_t nkeys =
      *rc::gen::oneOf(rc::gen::inRange<size_t>(1, 7), rc::gen::inRange<size_t>(50, 400));
  sc.keys = *rc::gen::container<std::vector<uint64_t>>(nkeys, rc::gen::arbitrary<uint64_t>());
  sc.ops =
      *rc::gen::scale(4.0, rc::gen::container<std::vector<Op>>(rc::gen::tuple(
                               rc::gen::inRange(0, 100), rc::gen::inRange<size_t>(0, nkeys),
                               rc::gen::arbitrary<size_t>(), rc::gen::inRange<int64_t>(1, 4))));
  return sc;
}

Scenario genScenario() {
  const Ordering ordering = genOrdering();
  return genScenario(ordering, genConcurrency());
}

// 1. ordering key: for every key, messages start in arrival order, one at a time.
RC_GTEST_PROP(KeySchedulerProperty, KeyOrderingStartsEachKeyInArrivalOrderOneAtATime, ()) {
  const Scenario sc = genScenario(Ordering::Key, genConcurrency());
  Sim sim(sc.ordering, sc.concurrency, sc.first_offset);
  for (const Op& op : sc.ops) {
    sim.step(sc, op);
    RC_ASSERT(sim.maxRunningPerKey() <= 1u);
  }
  sim.finishAll();
  std::map<uint64_t, size_t> last_started;  // key -> id of its latest start
  for (const Start& s : sim.starts()) {
    RC_ASSERT(s.was_waiting);
    RC_ASSERT(!s.key_was_running);         // never two of one key at a time
    RC_ASSERT(!s.older_same_key_waiting);  // no older message of the key skipped
    const uint64_t key = sim.msgs()[s.id].key;
    if (auto it = last_started.find(key); it != last_started.end()) RC_ASSERT(s.id > it->second);
    last_started[key] = s.id;
  }
}

// 2. running() never exceeds the concurrency, and nothing that could start waits.
RC_GTEST_PROP(KeySchedulerProperty, NeverExceedsConcurrencyAndIsWorkConserving, ()) {
  const Scenario sc = genScenario();
  Sim sim(sc.ordering, sc.concurrency, sc.first_offset);
  for (const Op& op : sc.ops) {
    sim.step(sc, op);
    RC_ASSERT(sim.sched().running() <= sim.limit());
    RC_ASSERT(sim.runningCount() <= sim.limit());
    // work-conserving: with a free slot, no waiting message may start
    RC_ASSERT(sim.startableWaiting() == std::nullopt);
    if (sc.ordering == Ordering::Partition) {
      RC_ASSERT(sim.runningCount() <= 1u);
      if (sim.runningCount() == 0) RC_ASSERT(sim.waitingCount() == 0u);
    }
    if (sc.ordering == Ordering::None && sim.runningCount() < sim.limit()) {
      RC_ASSERT(sim.waitingCount() == 0u);
    }
  }
  for (const Start& s : sim.starts()) RC_ASSERT(s.running_before < sim.limit());
}

// 3. Nothing lost or duplicated: after finishing everything, each message started exactly once.
RC_GTEST_PROP(KeySchedulerProperty, EveryMessageStartsExactlyOnce, ()) {
  const Scenario sc = genScenario();
  Sim sim(sc.ordering, sc.concurrency, sc.first_offset);
  for (const Op& op : sc.ops) {
    sim.step(sc, op);
    RC_ASSERT(sim.sched().running() == sim.runningCount());
    RC_ASSERT(sim.sched().waiting() == sim.waitingCount());
    RC_ASSERT(sim.sched().pending() == sim.runningCount() + sim.waitingCount());
  }
  sim.finishAll();
  for (size_t id = 0; id < sim.msgs().size(); ++id) {
    RC_ASSERT(sim.startCount()[id] == 1u);
    RC_ASSERT(sim.states()[id] == State::Done);
  }
  RC_ASSERT(sim.sched().running() == 0u);
  RC_ASSERT(sim.sched().waiting() == 0u);
  RC_ASSERT(sim.sched().pending() == 0u);
}

// 4. The commit position is the lowest unfinished offset, never past a waiting or running one.
RC_GTEST_PROP(KeySchedulerProperty, CommitPositionNeverPassesUnfinishedWork, ()) {
  const Scenario sc = genScenario();
  Sim sim(sc.ordering, sc.concurrency, sc.first_offset);
  for (const Op& op : sc.ops) {
    sim.step(sc, op);
    const int64_t position = sim.tracker().commitPosition();
    for (int64_t offset : sim.unfinishedOffsets()) RC_ASSERT(position <= offset);
    RC_ASSERT(position == sim.expectedCommitPosition());
  }
  sim.finishAll();
  RC_ASSERT(sim.tracker().commitPosition() == sim.expectedCommitPosition());
  if (!sim.msgs().empty()) {
    RC_ASSERT(sim.tracker().commitPosition() == sim.msgs().back().offset + 1);
  }
}

// 5a. ordering partition: exact arrival order, one at a time, whatever the concurrency.
RC_GTEST_PROP(KeySchedulerProperty, PartitionOrderingRunsOneAtATimeInArrivalOrder, ()) {
  const Scenario sc = genScenario(Ordering::Partition, genConcurrency());
  Sim sim(sc.ordering, sc.concurrency, sc.first_offset);
  for (const Op& op : sc.ops) {
    sim.step(sc, op);
    RC_ASSERT(sim.sched().running() <= 1u);
    RC_ASSERT(sim.runningCount() <= 1u);
  }
  sim.finishAll();
  const std::vector<size_t> order = sim.startOrder();
  RC_ASSERT(order.size() == sim.msgs().size());
  for (size_t i = 0; i < order.size(); ++i) RC_ASSERT(order[i] == i);
  for (const Start& s : sim.starts()) RC_ASSERT(s.running_before == 0u);
}

// 5b. ordering none: arrival order (FIFO), and as many as the concurrency allows run.
RC_GTEST_PROP(KeySchedulerProperty, NoneOrderingStartsFifoUpToConcurrency, ()) {
  const Scenario sc = genScenario(Ordering::None, genConcurrency());
  Sim sim(sc.ordering, sc.concurrency, sc.first_offset);
  for (const Op& op : sc.ops) {
    sim.step(sc, op);
    // exactly min(concurrency, unfinished) run: keys do not matter
    const size_t unfinished = sim.runningCount() + sim.waitingCount();
    RC_ASSERT(sim.sched().running() == std::min(sim.limit(), unfinished));
  }
  sim.finishAll();
  const std::vector<size_t> order = sim.startOrder();
  RC_ASSERT(order.size() == sim.msgs().size());
  for (size_t i = 0; i < order.size(); ++i) RC_ASSERT(order[i] == i);
}

// 6. takeWaiting() hands out exactly the waiting messages, oldest first; the scheduler stays
// consistent: running ones still finish, new ones are scheduled correctly.
RC_GTEST_PROP(KeySchedulerProperty, TakeWaitingReturnsWaitingOldestFirstAndStaysConsistent, ()) {
  const Scenario sc = genScenario();
  Sim sim(sc.ordering, sc.concurrency, sc.first_offset);
  auto check_invariants = [&] {
    RC_ASSERT(sim.sched().running() == sim.runningCount());
    RC_ASSERT(sim.sched().waiting() == sim.waitingCount());
    RC_ASSERT(sim.runningCount() <= sim.limit());
    RC_ASSERT(sim.maxRunningPerKey() <= (sc.ordering == Ordering::Key ? 1u : sim.limit()));
    RC_ASSERT(sim.startableWaiting() == std::nullopt);
  };
  auto take_and_check = [&] {
    const std::vector<Msg> expected = sim.waitingMsgs();
    const size_t running = sim.runningCount();
    const std::vector<Msg> taken = sim.take();
    RC_ASSERT(taken.size() == expected.size());
    for (size_t i = 0; i < taken.size(); ++i) RC_ASSERT(taken[i].id == expected[i].id);
    RC_ASSERT(sim.sched().waiting() == 0u);
    RC_ASSERT(sim.sched().running() == running);  // running ones stay running
  };
  for (const Op& op : sc.ops) {
    if (std::get<0>(op) >= 97) {
      take_and_check();
    } else {
      sim.step(sc, op);
    }
    check_invariants();
  }
  // a final take with whatever still waits, then everything running finishes
  take_and_check();
  check_invariants();
  sim.finishAll();
  check_invariants();
  RC_ASSERT(sim.sched().pending() == 0u);
  for (size_t id = 0; id < sim.msgs().size(); ++id) {
    if (sim.states()[id] == State::Taken) {
      RC_ASSERT(sim.startCount()[id] == 0u);  // taken out: never started
    } else {
      RC_ASSERT(sim.startCount()[id] == 1u);
      RC_ASSERT(sim.states()[id] == State::Done);
    }
  }
  for (const Start& s : sim.starts()) {
    RC_ASSERT(s.was_waiting);
    RC_ASSERT(!s.older_eligible_waiting);
    if (sc.ordering == Ordering::Key) {
      RC_ASSERT(!s.key_was_running);
      RC_ASSERT(!s.older_same_key_waiting);
    }
  }
  // and it still schedules after all that: a fresh burst on one key starts, in arrival order
  const size_t first = sim.msgs().size();
  for (int i = 0; i < 3; ++i) sim.arrive(sc.keys[0], 1);
  check_invariants();
  sim.finishAll();
  check_invariants();
  const std::vector<size_t> order = sim.startOrder();
  RC_ASSERT(order.size() >= 3u);
  RC_ASSERT(std::vector<size_t>(order.end() - 3, order.end()) ==
            (std::vector<size_t>{first, first + 1, first + 2}));
}

// 7. ordering key: a free slot goes to the oldest waiting message whose key is not running.
RC_GTEST_PROP(KeySchedulerProperty, KeyOrderingStartsOldestReadyMessageFirst, ()) {
  const Scenario sc = genScenario(Ordering::Key, genConcurrency());
  Sim sim(sc.ordering, sc.concurrency, sc.first_offset);
  for (const Op& op : sc.ops) sim.step(sc, op);
  sim.finishAll();
  for (const Start& s : sim.starts()) {
    RC_ASSERT(s.was_waiting);
    RC_ASSERT(!s.older_eligible_waiting);
  }
}

}  // namespace
}  // namespace kpipe::pipeline
