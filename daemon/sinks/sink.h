#pragma once
// Where a pipeline's output messages go when it is not a Kafka topic (the Kafka output is
// written by the pipeline worker itself, without copying the consumed payload).
//
// A sink answers each send with one of three outcomes, which decide what the worker does:
//   Ok      the effect happened: confirm the dedup id, count the message done
//   Retry   a blocking failure (the sink is down, slow, overloaded): retry later with backoff,
//           keep the key held, never skip the message
//   Reject  a non-blocking failure (the sink refused this message for good, e.g. HTTP 400):
//           route the message to the error topic with the reason and move on

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kpipe::sinks {

enum class SendStatus { Ok, Retry, Reject };

struct SendResult {
  SendStatus status = SendStatus::Ok;
  std::string reason;  // for Retry and Reject: what happened, for logs and error records
};

struct OutboundMessage {
  std::string_view id;  // the message id (dedup), "" without one: the Idempotency-Key
  std::string_view value;
  // Input headers passed on (e.g. traceparent), as name/value pairs.
  std::vector<std::pair<std::string_view, std::string_view>> headers;
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Starts sending `message`. Calls `done` exactly once, on the io_context thread, and never
  // from inside send(). The bytes `message` points to must stay valid until then.
  virtual void send(const OutboundMessage& message, std::function<void(SendResult)> done) = 0;
  // Messages accepted by send() and waiting for a connection (not yet on the wire).
  virtual size_t queued() const = 0;
  // Completes every pending send with Retry ("sink closed") and refuses new ones the same way.
  virtual void close() = 0;
  // For logs and error reasons: "http POST https://api.example.com/events".
  virtual std::string describe() const = 0;
};

}  // namespace kpipe::sinks
