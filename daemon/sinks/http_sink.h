#pragma once
// A Sink that POSTs (or PUTs, ...) each output message to one HTTP endpoint: an asynchronous
// HTTP/1.1 client (Boost.Beast, TLS through OpenSSL) on the pipeline's io_context.
//
// What a request carries: the message value as the body (Content-Type: application/json),
// `Idempotency-Key: <message id>` when the message has an id (the receiver deduplicates the
// redeliveries that at-least-once brings), the configured headers, then the message's
// pass-through headers (traceparent, ...). Pass-through headers come from the input topic, so
// they are untrusted: one with an invalid name or value, one that would change the framing
// (Host, Content-Length, Transfer-Encoding, Connection, ...) or one the request already has
// is left out rather than sent.
//
// Outcome of a send (sink.h): 2xx → Ok; 5xx, a status of `retry_statuses` (408, 425, 429 by
// default), a timeout, a refused or reset connection, a DNS or a TLS failure → Retry (the
// receiver is down or overloaded: try the same message again later); any other status (4xx,
// and 3xx: redirects are not followed) → Reject, the receiver refused this message for good.
// Reasons name the request ("HTTP 503 Service Unavailable from POST https://host/path: <first
// 200 bytes of the body>"); the URL's query is left out of them because it may hold a token.
//
// Connections: at most `connections` keep-alive connections, one request on each at a time
// (no pipelining: a slow response would hold back the ones behind it). Sends beyond that wait
// in a FIFO queue (queued()). A connection the server closed, or one that failed, is dropped
// and a new one opened on demand. A request sent on a reused connection that the server had
// already closed (an idle keep-alive timeout on its side: EOF or reset before any byte of a
// response) is sent once more on a new connection, within the same timeout, instead of failing;
// a connection idle for more than 30 s is not used again (a NAT may have dropped it silently).
// `timeout` covers one request from the start of its connection (DNS, connect, TLS handshake)
// or from taking an idle one, to the end of the response; time waiting in the queue is not
// counted.
//
// TLS (https://): the certificate is verified, against `ca_file` or else the system's store, and
// so is the host name (SNI is sent for names). Only `tls: {verify: false}` turns that off, for
// test endpoints with self-signed certificates: then any certificate for any name is accepted
// (a pipeline would send its data to whoever answers), and create() logs a warning each time,
// so that it shows at start, on every reload and in `kpipe check`. URLs in messages and in
// describe() have their credentials masked (config/redact.h), and the path too for a URL read
// from url_file.
//
// Memory is bounded: the request copies the message when send() is called (so the caller's
// bytes may go away before `done`; an output message is small next to a round trip), and a
// response body is never held: its first bytes are kept for the reason, the rest is read and
// dropped up to 64 KiB (the connection stays reusable) and past that the connection is closed
// (the outcome still follows the status).
//
// Threading: not thread-safe. create(), send(), queued(), close() and the destructor are called
// on the thread that runs `io` (a single-threaded io_context), and `done` is called there, never
// from inside send() or close(). DNS uses async_resolve, which Asio runs on its own internal
// thread; nothing else blocks or starts threads.
//
// Lifecycle: create() checks the spec and returns an error text for a bad one (no connection is
// made before the first send). close() completes every pending send, queued or in flight, with
// Retry "sink closed", closes the connections and refuses later sends the same way. Destroying
// the sink closes it first; operations still in flight in Asio own what they touch (shared
// state), so the sink may be destroyed at any time while `io` keeps running or is destroyed.
// The `done` callbacks of close() still run later on `io`.

#include "daemon/config/spec.h"
#include "daemon/sinks/sink.h"

#include <boost/asio/io_context.hpp>

#include <memory>
#include <string>
#include <variant>

namespace kpipe::sinks {

namespace detail {
class HttpClient;
}

class HttpSink final : public Sink {
 public:
  // The sink, or an error naming the field ("output.http.url: ..."): a URL that is not
  // http(s)://host[:port][/path][?query], an unknown method, a CA file that cannot be loaded, a
  // header that cannot be sent.
  static std::variant<std::unique_ptr<HttpSink>, std::string> create(
      boost::asio::io_context& io, const config::HttpSinkSpec& spec);

  ~HttpSink() override;
  HttpSink(const HttpSink&) = delete;
  HttpSink& operator=(const HttpSink&) = delete;

  void send(const OutboundMessage& message, std::function<void(SendResult)> done) override;
  size_t queued() const override;
  void close() override;
  std::string describe() const override;

 private:
  explicit HttpSink(std::shared_ptr<detail::HttpClient> client);

  // Shared with the connections' pending operations, which may outlive the sink.
  std::shared_ptr<detail::HttpClient> client_;
};

}  // namespace kpipe::sinks
