#pragma once
// The dedup store: remembers message ids so that an effect happens once per id.
//
// Protocol (DESIGN.md §1.5), per message with an id:
//   reserve(id, owner) before the side effect → New: go ahead; Done: a duplicate;
//                                                InProgress: another copy holds it, try later;
//   confirm(id) once the effect is acknowledged (the id is remembered for the store's ttl);
//   release(id, owner) when the effect failed and will be retried, or the message was revoked.
// A reservation that is never confirmed (crash) expires after reservation_ttl, so the message
// is processed again rather than lost.
//
// A store that cannot answer (down, timed out) says so in the reply's `error`: that is a
// blocking failure for the caller (retry later), never "not a duplicate".
//
// A Store is shared by the pipelines that name it and is thread-safe. Each pipeline opens a
// Session: its ids live in their own namespace (two pipelines may see the same id and must each
// process it), and answers come on the session's io_context thread. Local stores may answer
// inside the call; remote ones answer later. No callback runs after its Session is destroyed.

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace kpipe::dedup {

enum class ReserveResult {
  New,         // reserved now (or this owner's own reservation): go ahead, then confirm
  InProgress,  // another owner holds a reservation that has not expired: try again later
  Done,        // the effect already happened: a duplicate
};
const char* reserveResultName(ReserveResult result);

struct ReserveReply {
  ReserveResult result = ReserveResult::New;
  std::string error;  // non-empty: the store did not answer and nothing is known; retry
};

// How long ids and reservations live; given by the store's config.
struct Ttls {
  std::chrono::milliseconds done = std::chrono::hours(24 * 7);
  // Must outlast one attempt at the effect (a produce, an HTTP call): a reservation that
  // expires while its effect is still under way lets another copy start the same effect.
  std::chrono::milliseconds reservation = std::chrono::minutes(5);
};

class Session {
 public:
  using ReserveDone = std::function<void(const ReserveReply&)>;
  using ConfirmDone = std::function<void(std::string_view error)>;  // empty: confirmed

  virtual ~Session() = default;

  // `owner` names the copy of the message that asks (e.g. "partition:offset"): reserving again
  // for the same owner, after an answer was lost, gives New rather than InProgress. Stores
  // that cannot lose an answer may ignore it.
  virtual void reserve(std::string_view id, std::string_view owner, ReserveDone done) = 0;
  virtual void confirm(std::string_view id, ConfirmDone done) = 0;
  // Best effort, no answer: a reservation that is not released expires.
  virtual void release(std::string_view id, std::string_view owner) = 0;
  // False for a store that ignores `owner`: callers may then pass an empty one and skip
  // formatting it for every message.
  virtual bool usesOwner() const { return true; }
};

class Store {
 public:
  virtual ~Store() = default;
  // A session for the pipeline `ns`, answering on `io`.
  virtual std::unique_ptr<Session> open(boost::asio::io_context& io, const std::string& ns) = 0;
  virtual const std::string& name() const = 0;
};

}  // namespace kpipe::dedup
