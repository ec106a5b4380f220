#pragma once
// Decides which consumed messages of one input partition may take effect now, so that messages
// with the same key take effect in offset order while different keys proceed concurrently
// (DESIGN.md §1.1):
//
//   ordering key        at most one message per key running, at most `concurrency` keys running
//   ordering partition  one message running at a time (the worker passes concurrency 1)
//   ordering none       up to `concurrency` messages running, in any order
//
// Messages are submitted in offset order. One that may not start yet waits; when a running one
// finishes, finish() hands back the waiting messages that may start now. Among keys ready to
// start, the key whose waiting head arrived first goes first, so the oldest unfinished message
// (the one that holds the commit position back) is never starved by newer keys.
//
// Keys are 64-bit hashes: two keys that collide are serialized together, which costs
// concurrency, never order.
//
// Not thread-safe: one per assigned partition, used on the pipeline's io_context thread.

#include "daemon/config/spec.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <queue>
#include <utility>
#include <vector>

namespace kpipe::pipeline {

template <typename Item>
class KeyScheduler {
 public:
  KeyScheduler(config::Ordering ordering, size_t concurrency)
      : ordering_(ordering),
        concurrency_(ordering == config::Ordering::Partition || concurrency == 0 ? 1
                                                                                 : concurrency) {}

  // Adds the partition's next message. True: it starts now (the caller runs it and calls
  // finish() later); false: it waits and comes back from a later finish().
  bool submit(Item item, uint64_t key) {
    const uint64_t seq = next_seq_++;
    if (ordering_ != config::Ordering::Key) {
      if (running_ < concurrency_ && fifo_.empty()) {
        ++running_;
        return true;
      }
      fifo_.push_back(item);
      return false;
    }
    KeyState& k = keys_.findOrInsert(key);
    if (!k.running && k.head == kNone && running_ < concurrency_) {
      k.running = true;
      ++running_;
      return true;
    }
    const bool was_idle = !k.running && k.head == kNone;
    append(k, item, seq);
    ++waiting_;
    if (was_idle) ready_.push({seq, key});  // no slot free: first in line for one
    return false;
  }

  // `item` (started earlier, with `key`) is done. Appends the messages that start now to
  // `started`, oldest first; the caller runs them.
  void finish(uint64_t key, std::vector<Item>& started) {
    --running_;
    if (ordering_ != config::Ordering::Key) {
      while (running_ < concurrency_ && !fifo_.empty()) {
        started.push_back(fifo_.front());
        fifo_.pop_front();
        ++running_;
      }
      return;
    }
    if (KeyState* k = keys_.find(key); k != nullptr) {
      k->running = false;
      if (k->head != kNone) {
        ready_.push({nodes_[k->head].seq, key});
      } else {
        keys_.erase(key);
      }
    }
    while (running_ < concurrency_ && !ready_.empty()) {
      const uint64_t ready_key = ready_.top().second;
      ready_.pop();
      KeyState& k = *keys_.find(ready_key);  // a ready key has a waiting message: present
      started.push_back(popHead(k));
      --waiting_;
      k.running = true;
      ++running_;
    }
  }

  // Takes every waiting message out (stop, revoke), oldest first. Running ones stay running.
  void takeWaiting(std::vector<Item>& out) {
    if (ordering_ != config::Ordering::Key) {
      out.insert(out.end(), fifo_.begin(), fifo_.end());
      fifo_.clear();
      return;
    }
    std::vector<std::pair<uint64_t, Item>> waiting;
    keys_.retainIf([&](KeyState& k) {
      while (k.head != kNone) {
        uint64_t seq = nodes_[k.head].seq;
        waiting.emplace_back(seq, popHead(k));
      }
      return k.running;
    });
    std::sort(waiting.begin(), waiting.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [seq, item] : waiting) out.push_back(item);
    ready_ = {};
    waiting_ = 0;
  }

  size_t running() const { return running_; }
  size_t waiting() const { return ordering_ == config::Ordering::Key ? waiting_ : fifo_.size(); }
  size_t pending() const { return running() + waiting(); }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  // A waiting message in its key's queue: a singly linked list through a node pool, so that
  // a waiting message costs no allocation once the pool has grown.
  struct Node {
    Item item{};
    uint64_t seq = 0;
    uint32_t next = kNone;
  };
  struct KeyState {
    uint32_t head = kNone;
    uint32_t tail = kNone;
    bool running = false;
  };
  using ReadyKey = std::pair<uint64_t, uint64_t>;  // (seq of the key's head, key)

  // Keys with a running or waiting message: open addressing with linear probing and
  // backward-shift deletion, so that the per-message insert and erase allocate nothing
  // (std::unordered_map allocated a node for each and cost about 1 µs per message in the
  // end-to-end benchmark). Keys are already hashes; Fibonacci hashing spreads them anyway.
  // Load stays at most 1/2; the table grows, never shrinks (bounded by max_pending keys).
  class KeyTable {
   public:
    KeyState* find(uint64_t key) {
      if (slots_.empty()) return nullptr;
      for (size_t i = home(key);; i = (i + 1) & mask_) {
        Slot& slot = slots_[i];
        if (!slot.used) return nullptr;
        if (slot.key == key) return &slot.state;
      }
    }

    // The key's state, default-constructed if it was absent. Invalidates other pointers.
    KeyState& findOrInsert(uint64_t key) {
      if ((size_ + 1) * 2 > slots_.size()) grow();
      for (size_t i = home(key);; i = (i + 1) & mask_) {
        Slot& slot = slots_[i];
        if (!slot.used) {
          slot = Slot{key, KeyState{}, true};
          ++size_;
          return slot.state;
        }
        if (slot.key == key) return slot.state;
      }
    }

    void erase(uint64_t key) {
      if (slots_.empty()) return;
      size_t hole = home(key);
      for (;; hole = (hole + 1) & mask_) {
        if (!slots_[hole].used) return;
        if (slots_[hole].key == key) break;
      }
      // Backward shift: move later entries of the probe run into the hole when their home
      // position allows it, so that lookups never need tombstones.
      for (size_t next = (hole + 1) & mask_; slots_[next].used; next = (next + 1) & mask_) {
        const size_t want = home(slots_[next].key);
        if (((next - want) & mask_) >= ((next - hole) & mask_)) {
          slots_[hole] = slots_[next];
          hole = next;
        }
      }
      slots_[hole].used = false;
      --size_;
    }

    // Keeps the keys for which keep(state) is true.
    template <typename Keep>
    void retainIf(Keep keep) {
      std::vector<Slot> old;
      old.swap(slots_);
      size_ = 0;
      slots_.assign(old.size(), Slot{});
      for (Slot& slot : old) {
        if (slot.used && keep(slot.state)) findOrInsert(slot.key) = slot.state;
      }
    }

   private:
    struct Slot {
      uint64_t key = 0;
      KeyState state;
      bool used = false;
    };

    size_t home(uint64_t key) const {
      return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
    }

    void grow() {
      std::vector<Slot> old;
      old.swap(slots_);
      const size_t capacity = old.empty() ? 64 : old.size() * 2;
      slots_.assign(capacity, Slot{});
      mask_ = capacity - 1;
      shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(capacity));
      size_ = 0;
      for (Slot& slot : old) {
        if (slot.used) findOrInsert(slot.key) = slot.state;
      }
    }

    std::vector<Slot> slots_;
    size_t mask_ = 0;
    unsigned shift_ = 64;
    size_t size_ = 0;
  };

  void append(KeyState& k, Item item, uint64_t seq) {
    uint32_t n;
    if (free_ != kNone) {
      n = free_;
      free_ = nodes_[n].next;
    } else {
      n = static_cast<uint32_t>(nodes_.size());
      nodes_.emplace_back();
    }
    nodes_[n] = Node{item, seq, kNone};
    if (k.tail == kNone) {
      k.head = n;
    } else {
      nodes_[k.tail].next = n;
    }
    k.tail = n;
  }

  Item popHead(KeyState& k) {
    const uint32_t n = k.head;
    Item item = std::move(nodes_[n].item);
    nodes_[n].item = Item{};  // a free slot holds nothing
    k.head = nodes_[n].next;
    if (k.head == kNone) k.tail = kNone;
    nodes_[n].next = free_;
    free_ = n;
    return item;
  }

  config::Ordering ordering_;
  size_t concurrency_;
  size_t running_ = 0;
  size_t waiting_ = 0;
  uint64_t next_seq_ = 0;
  // ordering key
  KeyTable keys_;
  std::priority_queue<ReadyKey, std::vector<ReadyKey>, std::greater<ReadyKey>> ready_;
  std::vector<Node> nodes_;
  uint32_t free_ = kNone;
  // ordering partition / none
  std::deque<Item> fifo_;
};

}  // namespace kpipe::pipeline
