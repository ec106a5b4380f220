#pragma once
// The dedup store: remembers message ids so that an effect happens once per id.
//
// Protocol (DESIGN.md §1.5): reserve(id) before the side effect, confirm(id) once the effect
// is acknowledged, release(id) when the effect failed and will be retried. A reservation that
// is never confirmed (crash) expires after its TTL, so the message is processed again rather
// than lost.
//
// Implementations document their own thread-safety. This interface is synchronous: the memory
// store answers in nanoseconds; remote stores (redis) will get a batched, asynchronous variant.

#include <chrono>
#include <string_view>

namespace kpipe::dedup {

enum class ReserveResult {
  New,         // reserved now: go ahead, then confirm or release
  InProgress,  // someone else holds a reservation that has not expired
  Done,        // the effect already happened: a duplicate
};

class Store {
 public:
  virtual ~Store() = default;
  virtual ReserveResult reserve(std::string_view id, std::chrono::milliseconds reservation_ttl) = 0;
  virtual void confirm(std::string_view id, std::chrono::milliseconds ttl) = 0;
  virtual void release(std::string_view id) = 0;
};

}  // namespace kpipe::dedup
