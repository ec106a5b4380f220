// Properties of the memory dedup table: below its bound it answers exactly like a map of
// id → (expiry, done) under any sequence of reserves, confirms, releases and time; at its bound
// it holds at most max_entries ids and never calls an id Done that was never confirmed.

#include "daemon/dedup/memory_store.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace kpipe::dedup {
namespace {

using std::chrono::milliseconds;

enum Kind { Reserve, Confirm, Release, Advance, ConfirmMany, ReleaseMany };
// kind, id number, a duration in ms or a count
using Command = std::tuple<int, int, int>;

rc::Gen<Command> command(int ids, int amounts) {
  return rc::gen::tuple(rc::gen::inRange(0, 6), rc::gen::inRange(0, ids),
                        rc::gen::inRange(0, amounts));
}

std::string id(int n) { return "id-" + std::to_string(n); }

struct Model {
  struct Entry {
    int64_t expires;
    bool done;
  };
  std::map<std::string, Entry> entries;
  int64_t now = 0;

  ReserveResult reserve(const std::string& key, int64_t ttl) {
    auto it = entries.find(key);
    if (it != entries.end() && it->second.expires > now) {
      return it->second.done ? ReserveResult::Done : ReserveResult::InProgress;
    }
    entries[key] = {now + ttl, false};
    return ReserveResult::New;
  }
  size_t live() const {
    size_t n = 0;
    for (const auto& [key, entry] : entries) n += entry.expires > now;
    return n;
  }
};

RC_GTEST_PROP(MemoryTableProperty, BelowItsBoundAnswersLikeAMap, ()) {
  const int ids = *rc::gen::inRange(1, 3000);
  const int amounts = *rc::gen::inRange(1, 2000);
  const auto commands = *rc::gen::container<std::vector<Command>>(command(ids, amounts));
  std::chrono::steady_clock::time_point now{};
  // Room for every id the commands name, and no more: a small, well-filled table.
  const int max_entries = ids + amounts;
  MemoryTable table(max_entries, [&] { return now; });
  Model model;
  for (const auto& [kind, n, amount] : commands) {
    switch (kind) {
      case Reserve: {
        const ReserveResult expected = model.reserve(id(n), amount);
        RC_ASSERT(table.reserve(id(n), milliseconds(amount)) == expected);
        break;
      }
      case Confirm:
        model.entries[id(n)] = {model.now + amount, true};
        table.confirm(id(n), milliseconds(amount));
        break;
      case Release:
        model.entries.erase(id(n));
        table.release(id(n));
        break;
      case Advance:
        model.now += amount;
        now += milliseconds(amount);
        break;
      case ConfirmMany:  // many ids at once: the table grows, probe runs get long
        for (int i = 0; i < amount; ++i) {
          model.entries[id(n + i)] = {model.now + 1000, true};
          table.confirm(id(n + i), milliseconds(1000));
        }
        break;
      case ReleaseMany:  // many backward shifts, some across the end of the slots
        for (int i = 0; i < amount; ++i) {
          model.entries.erase(id(n + i));
          table.release(id(n + i));
        }
        break;
    }
    // Expired ids may still hold a slot until swept, and only those.
    RC_ASSERT(table.size() >= model.live());
    RC_ASSERT(table.size() <= model.entries.size());
  }
  RC_ASSERT(table.evictedForTest() == 0u);
  // Every id, live or not, is answered as the model answers.
  for (int n = 0; n < max_entries; ++n) {
    const ReserveResult expected = model.reserve(id(n), 1);
    RC_ASSERT(table.reserve(id(n), milliseconds(1)) == expected);
  }
}

RC_GTEST_PROP(MemoryTableProperty, AtItsBoundHoldsMaxEntriesAndNeverInventsDone, ()) {
  const int max_entries = *rc::gen::inRange(1, 50);
  const int ids = *rc::gen::inRange(1, 300);
  const auto commands = *rc::gen::container<std::vector<Command>>(command(ids, 200));
  std::chrono::steady_clock::time_point now{};
  MemoryTable table(max_entries, [&] { return now; });
  std::set<std::string> ever_confirmed;
  for (const auto& [kind, n, amount] : commands) {
    switch (kind) {
      case Reserve: {
        const ReserveResult result = table.reserve(id(n), milliseconds(amount));
        RC_ASSERT(result != ReserveResult::Done || ever_confirmed.count(id(n)) == 1);
        break;
      }
      case Confirm:
        ever_confirmed.insert(id(n));
        table.confirm(id(n), milliseconds(amount));
        break;
      case Release:
        table.release(id(n));
        break;
      case Advance:
        now += milliseconds(amount);
        break;
      case ConfirmMany:
        for (int i = 0; i < amount; ++i) {
          ever_confirmed.insert(id(n + i));
          table.confirm(id(n + i), milliseconds(amount));
          RC_ASSERT(table.size() <= static_cast<size_t>(max_entries));
        }
        break;
      case ReleaseMany:
        for (int i = 0; i < amount; ++i) table.release(id(n + i));
        break;
    }
    RC_ASSERT(table.size() <= static_cast<size_t>(max_entries));
  }
}

}  // namespace
}  // namespace kpipe::dedup
