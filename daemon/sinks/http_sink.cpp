#include "daemon/sinks/http_sink.h"

#include "daemon/config/redact.h"
#include "daemon/observe/log.h"
#include "daemon/observe/utf8.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/optional.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <system_error>
#include <vector>

namespace kpipe::sinks {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// A response body is read and dropped up to this size so that the connection can carry the next
// request; a larger one is left unread and its connection closed.
constexpr uint64_t kBodyReadLimit = 64 * 1024;
constexpr uint32_t kHeaderLimit = 16 * 1024;
// A connection idle for longer is closed rather than used: NATs and load balancers forget idle
// connections without a word (a request on one would wait for the whole timeout), while an
// idle connection the server closed properly is handled by sending the request again.
constexpr auto kIdleLimit = std::chrono::seconds(30);
// Bytes of a response body kept for the reason of a Retry or Reject.
constexpr size_t kExcerptBytes = 200;

// Response body that keeps only its first bytes and counts the rest: what a sink needs from a
// body is an excerpt for the reason, and a receiver must not be able to make kpipe hold a
// response of any size. It also enforces kBodyReadLimit itself: Beast 1.74's parser loses its
// own body_limit error when the header and the start of the body arrive in one read (the
// eager loop goes on to the body and clears the error).
struct ExcerptBody {
  struct value_type {
    std::string head;   // the first kExcerptBytes bytes at most
    uint64_t size = 0;  // bytes of body read
  };

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(http::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<uint64_t>& content_length, beast::error_code& ec) {
      ec = {};
      if (content_length && *content_length > kBodyReadLimit) ec = http::error::body_limit;
    }

    template <class ConstBufferSequence>
    size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      if (body_.size + beast::buffer_bytes(buffers) > kBodyReadLimit) {
        ec = http::error::body_limit;
        return 0;
      }
      size_t n = 0;
      for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
           ++it) {
        asio::const_buffer buffer = *it;
        size_t keep = std::min(buffer.size(), kExcerptBytes - body_.head.size());
        body_.head.append(static_cast<const char*>(buffer.data()), keep);
        n += buffer.size();
      }
      body_.size += n;
      ec = {};
      return n;
    }

    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

// What one request goes to, from the URL.
struct Url {
  bool tls = false;
  std::string host;         // for DNS and the certificate check: "example.com", "::1"
  std::string port;         // "443"
  std::string host_header;  // "example.com", "example.com:8443", "[::1]:8080"
  std::string target;       // "/path?query"
  std::string display;      // "https://example.com:8443/path": no query, it may hold a token
};

std::string shown(std::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, 100)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (text.size() > 100) out += "...";
  return out + "\"";
}

// "10s", "1500ms".
std::string formatDuration(std::chrono::milliseconds duration) {
  int64_t ms = duration.count();
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// Beast 1.74 speaks boost::string_view.
beast::string_view bsv(std::string_view text) { return {text.data(), text.size()}; }

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

std::variant<Url, std::string> parseUrl(std::string_view text) {
  auto fail = [&](const std::string& why) {
    // The URL may hold credentials (userinfo, a token in the query): never shown as written.
    return std::variant<Url, std::string>("output.http.url: " + shown(config::redactUrl(text)) +
                                          " " + why);
  };
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return fail("has a space, a control character or a non-ASCII character (percent-encode it)");
    }
  }
  size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) {
    return fail("is not an absolute URL (write http://host[:port]/path or https://...)");
  }
  Url url;
  std::string scheme = lower(text.substr(0, scheme_end));
  if (scheme == "https") {
    url.tls = true;
  } else if (scheme != "http") {
    return fail("has the unsupported scheme \"" + scheme + "\" (use http:// or https://)");
  }
  std::string_view rest = text.substr(scheme_end + 3);
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view path =
      authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return fail(
        "has user information (put credentials in output.http.headers, e.g. Authorization)");
  }
  std::string_view port;
  bool ipv6 = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("has an unterminated IPv6 address");
    url.host = std::string(authority.substr(1, close - 1));
    beast::error_code ec;
    asio::ip::make_address_v6(url.host, ec);
    if (ec) return fail("has an invalid IPv6 address \"" + url.host + "\"");
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("has characters after the IPv6 address");
      port = after.substr(1);
      if (port.empty()) return fail("has an empty port");
    }
    ipv6 = true;
  } else {
    size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return fail("has an empty port");
    }
    if (url.host.empty()) return fail("has no host");
    if (!std::all_of(url.host.begin(), url.host.end(), isHostChar)) {
      return fail("has an invalid host \"" + url.host + "\"");
    }
  }
  std::string default_port = url.tls ? "443" : "80";
  if (port.empty()) {
    url.port = default_port;
  } else {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
      return fail("has an invalid port \"" + std::string(port) + "\" (1 to 65535)");
    }
    url.port = std::to_string(value);
  }
  std::string authority_text = ipv6 ? "[" + url.host + "]" : url.host;
  url.host_header = url.port == default_port ? authority_text : authority_text + ":" + url.port;
  // The fragment is never sent; a missing path is "/".
  path = path.substr(0, path.find('#'));
  url.target = path.empty() || path.front() != '/' ? "/" + std::string(path) : std::string(path);
  url.display = scheme + "://" + url.host_header + url.target.substr(0, url.target.find('?'));
  return url;
}

// RFC 9110 token: header names.
bool isToken(std::string_view text) {
  static constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           kSpecials.find(c) != std::string_view::npos;
  });
}

// A header value that cannot end the header early or smuggle a second request: no control
// characters but tab.
bool isFieldValue(std::string_view text) {
  return std::none_of(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\t') || u == 0x7f;
  });
}

// Headers that decide how the request is framed or how the connection is used: kpipe sets
// them, neither the configuration nor a message may.
bool isFramingHeader(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
      "expect",         "proxy-connection"};
  std::string lowered = lower(name);
  return std::find(std::begin(kNames), std::end(kNames), lowered) != std::end(kNames);
}

// At most `max_bytes` of `text` as one line of printable UTF-8, for a reason: control
// characters and line breaks become single spaces, an invalid byte U+FFFD; "..." when cut
// (or when `more` says the text went on).
std::string printable(std::string_view text, size_t max_bytes, bool more) {
  std::string out;
  bool pending_space = false;
  auto emit = [&](std::string_view bytes) {
    if (pending_space && !out.empty()) out += ' ';
    pending_space = false;
    out += bytes;
  };
  size_t i = 0;
  while (i < text.size()) {
    const size_t lead_length = observe::utf8LeadLength(static_cast<unsigned char>(text[i]));
    if (i + std::max<size_t>(lead_length, 1) > max_bytes) break;
    uint32_t cp = 0;
    const size_t len = observe::utf8Sequence(text.substr(i), &cp);
    if (len == 0) {
      emit("\xef\xbf\xbd");
      i += 1;
      continue;
    }
    if (cp <= 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
      pending_space = true;
    } else {
      emit(text.substr(i, len));
    }
    i += len;
  }
  if (i < text.size() || more) out += "...";
  return out;
}

bool isDisconnect(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::connection_aborted ||
         ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated;
}

}  // namespace

namespace detail {

// One send, from send() to its outcome.
struct Exchange {
  http::request<http::string_body> request;
  std::function<void(SendResult)> done;  // empty once completed
  // Set when a connection first works on it: the timeout does not count time in the queue.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  bool resent = false;  // already sent again after finding its reused connection closed
};
using ExchangePtr = std::shared_ptr<Exchange>;

// What every connection of a sink needs; immutable once built.
struct Endpoint {
  Url url;
  http::verb method = http::verb::post;
  std::string where;  // "POST https://example.com/events", for reasons
  std::chrono::milliseconds timeout{};
  std::vector<int> retry_statuses;
  std::vector<std::pair<std::string, std::string>> headers;  // configured, validated
  std::shared_ptr<ssl::context> tls;                         // https only
  bool verify = true;  // false (tls.verify: false): any certificate, any name
};

class Connection;

class HttpClient : public std::enable_shared_from_this<HttpClient> {
 public:
  HttpClient(asio::io_context& io, std::shared_ptr<const Endpoint> endpoint, size_t connections)
      : io_(io), endpoint_(std::move(endpoint)), max_connections_(connections) {}

  void send(const OutboundMessage& message, std::function<void(SendResult)> done);
  size_t queued() const { return queue_.size(); }
  void close();
  std::string describe() const { return "http " + endpoint_->where; }
  // A connection is done with `exchange`; `reusable`: it can take the next one.
  void finished(const std::shared_ptr<Connection>& connection, const ExchangePtr& exchange,
                SendResult result, bool reusable);

 private:
  void complete(Exchange& exchange, SendResult result);
  void dispatch();

  asio::io_context& io_;
  std::shared_ptr<const Endpoint> endpoint_;
  size_t max_connections_;
  bool closed_ = false;
  std::deque<ExchangePtr> queue_;
  std::vector<std::shared_ptr<Connection>> connections_;  // open or opening
  std::vector<std::shared_ptr<Connection>> idle_;         // of connections_, free; last = newest
};

// One keep-alive connection, one exchange at a time. Every handler holds the connection
// (shared_from_this) and only a weak_ptr to the client, and checks `seq_`: once an exchange is
// over (answered, timed out, aborted), what is still pending of it finds a newer seq_ and stops.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& io, std::shared_ptr<const Endpoint> endpoint,
             std::weak_ptr<HttpClient> client)
      : io_(io),
        endpoint_(std::move(endpoint)),
        client_(std::move(client)),
        resolver_(io),
        timer_(io) {}

  // Starts `exchange`: only starts asynchronous operations, never calls back from inside.
  void start(ExchangePtr exchange);
  // Closes the connection; returns the exchange it was working on, if any, not completed.
  ExchangePtr abort();
  // When it last finished an exchange and stayed open.
  std::chrono::steady_clock::time_point idleSince() const { return idle_since_; }

 private:
  enum class Phase { Resolving, Connecting, Handshaking, Writing, Reading };

  // A completion handler that calls `handler` unless the exchange it was started for is over.
  template <class... Args>
  auto guarded(void (Connection::*handler)(Args...)) {
    return [self = shared_from_this(), seq = seq_, handler](Args... args) {
      if (seq == self->seq_) (self.get()->*handler)(std::move(args)...);
    };
  }

  void open();
  void onResolved(beast::error_code ec, tcp::resolver::results_type results);
  void onConnected(beast::error_code ec, tcp::endpoint);
  void onHandshake(beast::error_code ec);
  void write();
  void onWritten(beast::error_code ec, size_t);
  void read();
  void onRead(beast::error_code ec, size_t);
  void onTimeout(beast::error_code ec);
  void failIo(const std::string& what, beast::error_code ec);
  void fail(const std::string& what);
  void finish(SendResult result, bool reusable);
  SendResult classify(bool body_complete) const;
  void closeStream();
  beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }

  asio::io_context& io_;
  std::shared_ptr<const Endpoint> endpoint_;  // owns the TLS context the stream uses
  std::weak_ptr<HttpClient> client_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  bool open_ = false;    // connected (and TLS established): can write a request
  bool reused_ = false;  // the current exchange did not open this connection
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<ExcerptBody>> parser_;
  ExchangePtr exchange_;
  uint64_t seq_ = 0;
  Phase phase_ = Phase::Resolving;
  std::chrono::steady_clock::time_point idle_since_;
};

// --- HttpClient ------------------------------------------------------------------------------

void HttpClient::send(const OutboundMessage& message, std::function<void(SendResult)> done) {
  auto exchange = std::make_shared<Exchange>();
  exchange->done = std::move(done);
  if (closed_) {
    complete(*exchange, {SendStatus::Retry, "sink closed (" + endpoint_->where + ")"});
    return;
  }
  // The id comes from the message: one that cannot be a header value would split the request.
  if (!isFieldValue(message.id)) {
    complete(*exchange, {SendStatus::Reject, "the message id " + shown(message.id) +
                                                 " cannot be sent as Idempotency-Key (it has "
                                                 "control characters)"});
    return;
  }
  auto& request = exchange->request;
  request.version(11);
  request.method(endpoint_->method);
  request.target(endpoint_->url.target);
  request.set(http::field::host, endpoint_->url.host_header);
  request.set(http::field::content_type, "application/json");
  request.set(http::field::user_agent, "kpipe");
  for (const auto& [name, value] : endpoint_->headers) request.set(name, value);
  if (!message.id.empty()) request.set("Idempotency-Key", bsv(message.id));
  for (const auto& [name, value] : message.headers) {
    // From the input topic, so untrusted: never a second value of a header the request has,
    // never framing, never anything that does not parse as a header.
    if (!isToken(name) || !isFieldValue(value) || isFramingHeader(name) || lower(name) == "host" ||
        request.find(bsv(name)) != request.end()) {
      continue;
    }
    request.insert(bsv(name), bsv(value));
  }
  request.body() = std::string(message.value);
  request.prepare_payload();
  queue_.push_back(std::move(exchange));
  dispatch();
}

void HttpClient::dispatch() {
  while (!closed_ && !queue_.empty()) {
    std::shared_ptr<Connection> connection;
    if (!idle_.empty()) {
      // The most recently used first: the least likely to have been closed by the server.
      connection = std::move(idle_.back());
      idle_.pop_back();
      if (std::chrono::steady_clock::now() - connection->idleSince() > kIdleLimit) {
        connection->abort();
        std::erase(connections_, connection);
        continue;
      }
    } else if (connections_.size() < max_connections_) {
      connection = std::make_shared<Connection>(io_, endpoint_, weak_from_this());
      connections_.push_back(connection);
    } else {
      return;
    }
    ExchangePtr exchange = std::move(queue_.front());
    queue_.pop_front();
    connection->start(std::move(exchange));
  }
}

void HttpClient::finished(const std::shared_ptr<Connection>& connection,
                          const ExchangePtr& exchange, SendResult result, bool reusable) {
  complete(*exchange, std::move(result));
  if (closed_) return;
  if (reusable) {
    idle_.push_back(connection);
  } else {
    std::erase(connections_, connection);
  }
  dispatch();
}

void HttpClient::close() {
  if (closed_) return;
  closed_ = true;
  SendResult closed{SendStatus::Retry, "sink closed (" + endpoint_->where + ")"};
  for (ExchangePtr& exchange : queue_) complete(*exchange, closed);
  queue_.clear();
  for (auto& connection : connections_) {
    if (ExchangePtr exchange = connection->abort()) complete(*exchange, closed);
  }
  connections_.clear();
  idle_.clear();
}

void HttpClient::complete(Exchange& exchange, SendResult result) {
  if (!exchange.done) return;
  // Posted, never called in place: send() and close() must not call back (sink.h), and the
  // callback may well call send() again.
  asio::post(io_, [done = std::move(exchange.done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
  exchange.done = nullptr;
}

// --- Connection ------------------------------------------------------------------------------

void Connection::start(ExchangePtr exchange) {
  exchange_ = std::move(exchange);
  ++seq_;
  if (!exchange_->deadline) {
    exchange_->deadline = std::chrono::steady_clock::now() + endpoint_->timeout;
  }
  // One timer for the whole request, whatever step it is at: DNS and the TLS handshake are not
  // covered by beast::tcp_stream's own timeouts.
  timer_.expires_at(*exchange_->deadline);
  timer_.async_wait(guarded(&Connection::onTimeout));
  reused_ = open_;
  if (open_) {
    write();
  } else {
    open();
  }
}

ExchangePtr Connection::abort() {
  ++seq_;
  timer_.cancel();
  closeStream();
  return std::move(exchange_);
}

void Connection::open() {
  phase_ = Phase::Resolving;
  buffer_.clear();
  resolver_.async_resolve(endpoint_->url.host, endpoint_->url.port,
                          guarded(&Connection::onResolved));
}

void Connection::onResolved(beast::error_code ec, tcp::resolver::results_type results) {
  if (ec) return fail("cannot resolve " + endpoint_->url.host + ": " + ec.message());
  phase_ = Phase::Connecting;
  // A new stream each time: a TLS session cannot be reused over a new socket.
  plain_.reset();
  tls_.reset();
  if (endpoint_->tls) {
    tls_.emplace(io_, *endpoint_->tls);
  } else {
    plain_.emplace(io_);
  }
  tcp().async_connect(results, guarded(&Connection::onConnected));
}

void Connection::onConnected(beast::error_code ec, tcp::endpoint) {
  const Url& url = endpoint_->url;
  if (ec) return fail("cannot connect to " + url.host + ":" + url.port + ": " + ec.message());
  tcp().socket().set_option(tcp::no_delay(true), ec);
  if (!tls_) {
    open_ = true;
    return write();
  }
  phase_ = Phase::Handshaking;
  SSL* ssl = tls_->native_handle();
  beast::error_code not_ip;
  asio::ip::make_address(url.host, not_ip);
  // OpenSSL checks the name (or address) during the handshake, which makes its verify result
  // say "hostname mismatch"; Asio's callback checks it again, independently.
  bool named = not_ip ? SSL_set1_host(ssl, url.host.c_str()) == 1
                      : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str()) == 1;
  // SNI carries names only (RFC 6066), never an address.
  if (!named || (not_ip && SSL_set_tlsext_host_name(ssl, url.host.c_str()) != 1)) {
    return fail("cannot set up TLS for " + url.host);
  }
  if (endpoint_->verify) {
    tls_->set_verify_mode(ssl::verify_peer);
    tls_->set_verify_callback(ssl::host_name_verification(url.host));
  } else {
    tls_->set_verify_mode(ssl::verify_none);
  }
  tls_->async_handshake(ssl::stream_base::client, guarded(&Connection::onHandshake));
}

void Connection::onHandshake(beast::error_code ec) {
  if (ec) {
    std::string what = "TLS handshake with " + endpoint_->url.host + ":" + endpoint_->url.port +
                       " failed: " + ec.message();
    long verify = SSL_get_verify_result(tls_->native_handle());
    if (verify != X509_V_OK)
      what += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
    return fail(what);
  }
  open_ = true;
  write();
}

void Connection::write() {
  phase_ = Phase::Writing;
  parser_.emplace();
  parser_->header_limit(kHeaderLimit);
  parser_->body_limit(kBodyReadLimit);
  // A response to HEAD has a Content-Length but no body.
  if (endpoint_->method == http::verb::head) parser_->skip(true);
  // The handler holds the exchange too: the serializer refers to its request until the
  // operation ends, even when the exchange was completed (timeout, close) in the meantime.
  auto handler = [guard = guarded(&Connection::onWritten), exchange = exchange_](
                     beast::error_code ec, size_t n) { guard(ec, n); };
  if (tls_) {
    http::async_write(*tls_, exchange_->request, std::move(handler));
  } else {
    http::async_write(*plain_, exchange_->request, std::move(handler));
  }
}

void Connection::onWritten(beast::error_code ec, size_t) {
  if (ec) return failIo("sending the request failed", ec);
  read();
}

void Connection::read() {
  phase_ = Phase::Reading;
  if (tls_) {
    http::async_read(*tls_, buffer_, *parser_, guarded(&Connection::onRead));
  } else {
    http::async_read(*plain_, buffer_, *parser_, guarded(&Connection::onRead));
  }
}

void Connection::onRead(beast::error_code ec, size_t) {
  if (ec == http::error::body_limit && parser_->is_header_done()) {
    // A large body: the status decides; the rest of the body is not read, so the connection
    // cannot carry another request.
    return finish(classify(false), false);
  }
  if (ec) return failIo("reading the response failed", ec);
  unsigned status = parser_->get().result_int();
  if (status >= 100 && status < 200 && status != 101) {
    // Informational (103 Early Hints, an unasked-for 100 Continue): the answer follows.
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyReadLimit);
    if (endpoint_->method == http::verb::head) parser_->skip(true);
    return read();
  }
  bool reusable = parser_->get().keep_alive() && !parser_->need_eof() && status != 101;
  finish(classify(true), reusable);
}

SendResult Connection::classify(bool body_complete) const {
  const auto& response = parser_->get();
  unsigned status = response.result_int();
  if (status >= 200 && status < 300) return {SendStatus::Ok, {}};
  beast::string_view reason_phrase = response.reason();
  std::string phrase =
      printable(std::string_view(reason_phrase.data(), reason_phrase.size()), 64, false);
  if (phrase.empty()) phrase = std::string(http::obsolete_reason(http::int_to_status(status)));
  std::string reason =
      "HTTP " + std::to_string(status) + " " + phrase + " from " + endpoint_->where;
  const ExcerptBody::value_type& body = response.body();
  bool more = !body_complete || body.size > body.head.size();
  std::string excerpt = printable(body.head, kExcerptBytes, more);
  if (!excerpt.empty()) reason += ": " + excerpt;
  const auto& retry = endpoint_->retry_statuses;
  bool again = (status >= 500 && status < 600) ||
               std::find(retry.begin(), retry.end(), static_cast<int>(status)) != retry.end();
  return {again ? SendStatus::Retry : SendStatus::Reject, std::move(reason)};
}

void Connection::onTimeout(beast::error_code ec) {
  if (ec) return;  // cancelled
  static constexpr const char* kDoing[] = {"resolving the host", "connecting",
                                           "in the TLS handshake", "sending the request",
                                           "waiting for the response"};
  finish({SendStatus::Retry, "timeout after " + formatDuration(endpoint_->timeout) + " " +
                                 kDoing[static_cast<int>(phase_)] + " (" + endpoint_->where + ")"},
         false);
}

void Connection::failIo(const std::string& what, beast::error_code ec) {
  // A reused connection that the server had closed while idle (its keep-alive timeout): the
  // request never reached it, so send it again on a new connection, once.
  if (reused_ && !exchange_->resent && isDisconnect(ec) && !parser_->got_some() &&
      buffer_.size() == 0) {
    exchange_->resent = true;
    closeStream();
    open_ = false;
    reused_ = false;
    return open();
  }
  fail(what + ": " + ec.message());
}

void Connection::fail(const std::string& what) {
  finish({SendStatus::Retry, what + " (" + endpoint_->where + ")"}, false);
}

void Connection::finish(SendResult result, bool reusable) {
  ++seq_;
  timer_.cancel();
  if (reusable) {
    idle_since_ = std::chrono::steady_clock::now();
  } else {
    closeStream();
  }
  ExchangePtr exchange = std::move(exchange_);
  if (auto client = client_.lock()) {
    client->finished(shared_from_this(), exchange, std::move(result), reusable);
  }
}

void Connection::closeStream() {
  open_ = false;
  resolver_.cancel();
  beast::error_code ignored;
  // Closing the socket (no TLS close_notify: nobody waits for it) cancels what is pending on it.
  if (plain_) plain_->socket().close(ignored);
  if (tls_) tls_->next_layer().socket().close(ignored);
}

}  // namespace detail

// --- HttpSink --------------------------------------------------------------------------------

std::variant<std::unique_ptr<HttpSink>, std::string> HttpSink::create(
    asio::io_context& io, const config::HttpSinkSpec& spec) {
  auto endpoint = std::make_shared<detail::Endpoint>();
  auto url = parseUrl(spec.url);
  if (auto* error = std::get_if<std::string>(&url)) return std::move(*error);
  endpoint->url = std::get<Url>(std::move(url));
  // A URL from url_file may hold its token anywhere, the path included (webhooks).
  if (spec.url_secret) endpoint->url.display = config::redactSecretUrl(endpoint->url.display);

  if (!isToken(spec.method))
    return "output.http.method: " + shown(spec.method) + " is not a method";
  endpoint->method = http::string_to_verb(spec.method);
  if (endpoint->method == http::verb::unknown) {
    return "output.http.method: unknown HTTP method " + shown(spec.method) +
           " (e.g. POST, PUT, PATCH)";
  }
  endpoint->where = spec.method + " " + endpoint->url.display;
  if (spec.timeout.count() <= 0) return std::string("output.http.timeout: must be positive");
  endpoint->timeout = spec.timeout;
  if (spec.connections == 0) return std::string("output.http.connections: must be at least 1");
  endpoint->retry_statuses = spec.retry_statuses;

  for (const auto& [name, value] : spec.headers) {
    std::string where = "output.http.headers." + name + ": ";
    if (!isToken(name)) return where + shown(name) + " is not a header name";
    if (!isFieldValue(value)) return where + "the value has a line break or a control character";
    if (isFramingHeader(name)) return where + "kpipe sets this header itself";
    endpoint->headers.emplace_back(name, value);
  }

  if (endpoint->url.tls && !spec.tls_verify) {
    if (!spec.ca_file.empty()) {
      return std::string("output.http.ca_file: not used with tls.verify: false");
    }
    auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
    context->set_verify_mode(ssl::verify_none);
    endpoint->tls = std::move(context);
    endpoint->verify = false;
    // Every time the sink is built: at start, on a reload, and in `kpipe check`.
    observe::log::warn(
        "output.http: TLS certificate verification is off (tls.verify: false): anyone on the "
        "path can read and change what is sent; for test endpoints only",
        {{"endpoint", endpoint->where}});
  } else if (endpoint->url.tls) {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
    context->set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    if (!spec.ca_file.empty()) {
      context->load_verify_file(spec.ca_file.string(), ec);
      if (ec) {
        return "output.http.ca_file: cannot load CA certificates from " + spec.ca_file.string() +
               ": " + ec.message();
      }
    } else {
      context->set_default_verify_paths(ec);
      if (ec) return "output.http: cannot load the system's CA certificates: " + ec.message();
    }
    endpoint->tls = std::move(context);
  } else if (!spec.ca_file.empty()) {
    // Most likely the URL was meant to be https://: say so rather than send in clear text.
    return "output.http.ca_file: set, but the URL " + shown(endpoint->url.display) +
           " is not https://";
  } else if (!spec.tls_verify) {
    return "output.http.tls.verify: set, but the URL " + shown(endpoint->url.display) +
           " is not https://";
  }

  auto client = std::make_shared<detail::HttpClient>(io, std::move(endpoint), spec.connections);
  return std::unique_ptr<HttpSink>(new HttpSink(std::move(client)));
}

HttpSink::HttpSink(std::shared_ptr<detail::HttpClient> client) : client_(std::move(client)) {}

HttpSink::~HttpSink() { client_->close(); }

void HttpSink::send(const OutboundMessage& message, std::function<void(SendResult)> done) {
  client_->send(message, std::move(done));
}

size_t HttpSink::queued() const { return client_->queued(); }

void HttpSink::close() { client_->close(); }

std::string HttpSink::describe() const { return client_->describe(); }

}  // namespace kpipe::sinks
