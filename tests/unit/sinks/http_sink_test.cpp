#include "daemon/sinks/http_sink.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kpipe::sinks {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// --- A real HTTP(S) server on a loopback port, on its own thread ----------------------------

// What the server answers to one request.
struct Reply {
  unsigned status = 200;
  std::string body = R"({"ok":true})";
  bool close = false;       // "Connection: close", then close the connection
  bool drop_after = false;  // answer as keep-alive, then close the connection anyway
  bool hold = false;        // answer only after release()
  bool never = false;       // never answer; wait for the client to close
};

struct Received {
  std::string method;
  std::string target;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case name → value(s), ", "-joined
  std::string sni;                             // TLS server name the client sent
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "<none>" : it->second;
  }
};

class TestServer {
 public:
  using Handler = std::function<Reply(const Received&)>;

  explicit TestServer(Handler handler, std::unique_ptr<ssl::context> tls = nullptr)
      : tls_(std::move(tls)), handler_(std::move(handler)) {
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.bind(endpoint);
    acceptor_.listen();
    gate_.expires_at(asio::steady_timer::time_point::max());
    asio::co_spawn(io_, accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    io_.stop();
    thread_.join();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url(const std::string& path = "/events") const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port()) + path;
  }
  // Answers the held requests, and every later one at once.
  void release() {
    asio::post(io_, [this] {
      released_ = true;
      gate_.cancel();
    });
  }

  int accepted() const { return stat(&Stats::accepted); }
  int open() const { return stat(&Stats::open); }  // connections not yet closed
  int active() const { return stat(&Stats::active); }
  int maxActive() const { return stat(&Stats::max_active); }
  int handshakeFailures() const { return stat(&Stats::handshake_failures); }
  std::vector<Received> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  struct Stats {
    int accepted = 0;
    int open = 0;
    int active = 0;  // requests read and not answered
    int max_active = 0;
    int handshake_failures = 0;
  };
  int stat(int Stats::*field) const {
    std::lock_guard lock(mutex_);
    return stats_.*field;
  }

  asio::awaitable<void> accept() {
    for (;;) {
      beast::error_code ec;
      tcp::socket socket =
          co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      {
        std::lock_guard lock(mutex_);
        ++stats_.accepted;
        ++stats_.open;
      }
      asio::co_spawn(io_, session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream tcp_stream(std::move(socket));
    if (!tls_) {
      co_await serve(tcp_stream, "");
    } else {
      beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *tls_);
      beast::error_code ec;
      co_await stream.async_handshake(ssl::stream_base::server,
                                      asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        std::lock_guard lock(mutex_);
        ++stats_.handshake_failures;
      } else {
        const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
        co_await serve(stream, sni ? sni : "");
      }
    }
    std::lock_guard lock(mutex_);
    --stats_.open;
  }

  template <class Stream>
  asio::awaitable<void> serve(Stream& stream, std::string sni) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> request;
      beast::error_code ec;
      co_await http::async_read(stream, buffer, request,
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      Received received{std::string(request.method_string()),
                        std::string(request.target()),
                        request.body(),
                        {},
                        sni};
      for (const auto& field : request) {
        std::string name(field.name_string());
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        std::string& value = received.headers[name];
        value += (value.empty() ? "" : ", ") + std::string(field.value());
      }
      Reply reply = handler_(received);
      {
        std::lock_guard lock(mutex_);
        received_.push_back(received);
        stats_.max_active = std::max(stats_.max_active, ++stats_.active);
      }
      if (reply.never) {
        // Until the client gives up and closes the connection.
        http::request<http::string_body> next;
        co_await http::async_read(stream, buffer, next,
                                  asio::redirect_error(asio::use_awaitable, ec));
        std::lock_guard lock(mutex_);
        --stats_.active;
        co_return;
      }
      while (reply.hold && !released_) {
        co_await gate_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      http::response<http::string_body> response;
      response.version(11);
      response.result(reply.status);
      response.set(http::field::server, "kpipe-test");
      response.keep_alive(!reply.close);
      // No body in a 204 (Beast refuses to prepare one).
      if (reply.status != 204) response.body() = reply.body;
      response.prepare_payload();
      co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
      {
        std::lock_guard lock(mutex_);
        --stats_.active;
      }
      if (ec || reply.close || reply.drop_after) co_return;  // the stream closes with the frame
    }
  }

  // Members in destruction order: sessions still suspended die with io_, before the context.
  std::unique_ptr<ssl::context> tls_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  asio::steady_timer gate_{io_};  // held requests wait on it
  bool released_ = false;
  Handler handler_;
  mutable std::mutex mutex_;
  Stats stats_;
  std::vector<Received> received_;
  std::thread thread_;
};

Reply ok(const Received&) { return {}; }

// --- The client side: the sink on an io_context run by the test's thread ---------------------

// A send's outcome, once `done` has been called.
using Outcome = std::shared_ptr<std::optional<SendResult>>;

OutboundMessage message(std::string_view value, std::string_view id = "") {
  return OutboundMessage{id, value, {}};
}

class HttpSinkTest : public ::testing::Test {
 protected:
  static config::HttpSinkSpec spec(const std::string& url) {
    config::HttpSinkSpec spec;
    spec.url = url;
    spec.timeout = 2s;
    spec.connections = 4;
    return spec;
  }

  std::unique_ptr<HttpSink> create(const config::HttpSinkSpec& spec) {
    auto created = HttpSink::create(io_, spec);
    if (auto* error = std::get_if<std::string>(&created)) {
      ADD_FAILURE() << "create: " << *error;
      return nullptr;
    }
    return std::get<std::unique_ptr<HttpSink>>(std::move(created));
  }

  static std::string createError(const config::HttpSinkSpec& spec) {
    asio::io_context io;
    auto created = HttpSink::create(io, spec);
    auto* error = std::get_if<std::string>(&created);
    return error ? *error : "<created>";
  }

  Outcome send(Sink& sink, const OutboundMessage& message) {
    auto outcome = std::make_shared<std::optional<SendResult>>();
    sink.send(message, [outcome](SendResult result) {
      EXPECT_FALSE(outcome->has_value()) << "done called twice";
      *outcome = std::move(result);
    });
    EXPECT_FALSE(outcome->has_value()) << "done called from inside send()";
    return outcome;
  }

  SendResult sendAndWait(Sink& sink, const OutboundMessage& message) {
    Outcome outcome = send(sink, message);
    if (!runUntil([&] { return outcome->has_value(); })) {
      ADD_FAILURE() << "no outcome within 5s";
      return {SendStatus::Retry, "<no outcome>"};
    }
    return **outcome;
  }

  // Runs the client's io_context until `condition` holds; false after `limit`.
  bool runUntil(const std::function<bool()>& condition, std::chrono::milliseconds limit = 5s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io_.restart();
      if (io_.run_one_for(10ms) == 0) std::this_thread::sleep_for(1ms);
    }
    return true;
  }
  void runFor(std::chrono::milliseconds duration) {
    runUntil([] { return false; }, duration);
  }

  asio::io_context io_;
};

// --- create() --------------------------------------------------------------------------------

TEST(HttpSinkCreateTest, RejectsBadUrls) {
  struct Case {
    std::string url;
    std::string error;
  };
  const Case cases[] = {
      {"ftp://example.com/x", R"(has the unsupported scheme "ftp")"},
      {"example.com/events", "is not an absolute URL"},
      {"http:///events", "has no host"},
      {"http://:8080/events", "has no host"},
      {"http://example.com:0/", "has an invalid port"},
      {"http://example.com:70000/", "has an invalid port"},
      {"http://example.com:8x/", "has an invalid port"},
      {"http://example.com:/", "has an empty port"},
      {"http://user:secret@example.com/", "has user information"},
      {"http://[::1/", "unterminated IPv6 address"},
      {"http://[zz]:80/", "invalid IPv6 address"},
      {"http://exa$mple.com/", "has an invalid host"},
      {"http://example.com/a b", "has a space"},
      {"", "is not an absolute URL"},
  };
  for (const Case& c : cases) {
    config::HttpSinkSpec spec;
    spec.url = c.url;
    asio::io_context io;
    auto created = HttpSink::create(io, spec);
    auto* error = std::get_if<std::string>(&created);
    ASSERT_NE(error, nullptr) << c.url;
    EXPECT_EQ(error->rfind("output.http.url: ", 0), 0u) << *error;
    EXPECT_NE(error->find(c.error), std::string::npos) << c.url << " → " << *error;
  }
}

TEST(HttpSinkCreateTest, DescribesTheEndpointWithoutTheQuery) {
  struct Case {
    std::string url;
    std::string method;
    std::string described;
  };
  const Case cases[] = {
      {"https://api.example.com", "POST", "http POST https://api.example.com/"},
      {"HTTP://api.example.com:80/v1", "POST", "http POST http://api.example.com/v1"},
      {"http://h:8080/v1/events?token=secret#frag", "PUT", "http PUT http://h:8080/v1/events"},
      {"https://h:443/x?y", "PATCH", "http PATCH https://h/x"},
      {"http://[::1]:8080?q=1", "POST", "http POST http://[::1]:8080/"},
  };
  for (const Case& c : cases) {
    config::HttpSinkSpec spec;
    spec.url = c.url;
    spec.method = c.method;
    asio::io_context io;
    auto created = HttpSink::create(io, spec);
    auto* sink = std::get_if<std::unique_ptr<HttpSink>>(&created);
    ASSERT_NE(sink, nullptr) << std::get<std::string>(created);
    EXPECT_EQ((*sink)->describe(), c.described);
    EXPECT_EQ((*sink)->queued(), 0u);
  }
}

TEST(HttpSinkCreateTest, RejectsBadSpecs) {
  auto errorOf = [](auto change) {
    config::HttpSinkSpec spec;
    spec.url = "https://127.0.0.1/events";
    change(spec);
    asio::io_context io;
    auto created = HttpSink::create(io, spec);
    auto* error = std::get_if<std::string>(&created);
    return error ? *error : "<created>";
  };
  EXPECT_NE(errorOf([](auto& s) { s.method = "FETCH"; }).find("output.http.method: unknown"),
            std::string::npos);
  EXPECT_NE(errorOf([](auto& s) { s.method = "PO ST"; }).find("output.http.method:"),
            std::string::npos);
  EXPECT_NE(errorOf([](auto& s) {
              s.headers["X-A"] = "a\r\nX-B: b";
            }).find("output.http.headers.X-A: the value has a line break"),
            std::string::npos);
  EXPECT_NE(errorOf([](auto& s) { s.headers["Bad Name"] = "x"; }).find("is not a header name"),
            std::string::npos);
  EXPECT_NE(errorOf([](auto& s) {
              s.headers["content-length"] = "3";
            }).find("output.http.headers.content-length: kpipe sets this header itself"),
            std::string::npos);
  EXPECT_NE(errorOf([](auto& s) {
              s.ca_file = "/nonexistent/ca.pem";
            }).find("output.http.ca_file: cannot load CA certificates from /nonexistent/ca.pem"),
            std::string::npos);
  EXPECT_NE(errorOf([](auto& s) {
              s.url = "http://127.0.0.1/";
              s.ca_file = "/etc/ssl/certs/ca-certificates.crt";
            }).find("output.http.ca_file: set, but the URL"),
            std::string::npos);
  EXPECT_NE(errorOf([](auto& s) { s.connections = 0; }).find("output.http.connections:"),
            std::string::npos);
  EXPECT_NE(errorOf([](auto& s) { s.timeout = 0ms; }).find("output.http.timeout:"),
            std::string::npos);
  EXPECT_EQ(errorOf([](auto& s) { s.headers["Authorization"] = "Bearer t"; }), "<created>");
}

// --- Requests and outcomes -------------------------------------------------------------------

TEST_F(HttpSinkTest, SendsTheMessageAsTheRequest) {
  // given
  TestServer server(ok);
  auto s = spec(server.url("/v1/events?tenant=a"));
  s.method = "PUT";
  s.headers = {{"Authorization", "Bearer t0ken"}, {"X-Source", "kpipe-test"}};
  auto sink = create(s);
  ASSERT_TRUE(sink);
  OutboundMessage with_id = message(R"({"user_id":"u-1"})", "6f1c8f9e-8a43");
  with_id.headers = {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}};

  // when
  SendResult first = sendAndWait(*sink, with_id);
  SendResult second = sendAndWait(*sink, message(R"({"user_id":"u-2"})"));

  // then
  EXPECT_EQ(first.status, SendStatus::Ok) << first.reason;
  EXPECT_EQ(second.status, SendStatus::Ok) << second.reason;
  auto received = server.received();
  ASSERT_EQ(received.size(), 2u);
  const Received& r = received[0];
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.target, "/v1/events?tenant=a");
  EXPECT_EQ(r.body, R"({"user_id":"u-1"})");
  EXPECT_EQ(r.header("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("content-length"), "17");
  EXPECT_EQ(r.header("user-agent"), "kpipe");
  EXPECT_EQ(r.header("idempotency-key"), "6f1c8f9e-8a43");
  EXPECT_EQ(r.header("authorization"), "Bearer t0ken");
  EXPECT_EQ(r.header("x-source"), "kpipe-test");
  EXPECT_EQ(r.header("traceparent"), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(received[1].body, R"({"user_id":"u-2"})");
  EXPECT_EQ(received[1].header("idempotency-key"), "<none>");
  EXPECT_EQ(received[1].header("traceparent"), "<none>");
}

TEST_F(HttpSinkTest, PassThroughHeadersCannotChangeTheRequest) {
  // given: headers from the input topic, some of them hostile
  TestServer server(ok);
  auto s = spec(server.url());
  s.headers = {{"Authorization", "Bearer mine"}};
  auto sink = create(s);
  ASSERT_TRUE(sink);
  OutboundMessage m = message("{}", "id-1");
  m.headers = {{"traceparent", "00-a-b-01"},
               {"Host", "evil.example"},
               {"Content-Length", "0"},
               {"Transfer-Encoding", "chunked"},
               {"Authorization", "Bearer stolen"},
               {"Idempotency-Key", "other"},
               {"Content-Type", "text/plain"},
               {"X-Split", "a\r\nX-Injected: 1"},
               {"bad name", "v"},
               {"X-Binary", std::string_view("a\0b", 3)},
               {"X-Fine", "caf\xc3\xa9"}};

  // when
  SendResult result = sendAndWait(*sink, m);

  // then
  EXPECT_EQ(result.status, SendStatus::Ok) << result.reason;
  auto received = server.received();
  ASSERT_EQ(received.size(), 1u);
  const Received& r = received[0];
  EXPECT_EQ(r.header("traceparent"), "00-a-b-01");
  EXPECT_EQ(r.header("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(r.header("content-length"), "2");
  EXPECT_EQ(r.header("transfer-encoding"), "<none>");
  EXPECT_EQ(r.header("authorization"), "Bearer mine");
  EXPECT_EQ(r.header("idempotency-key"), "id-1");
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("x-split"), "<none>");
  EXPECT_EQ(r.header("x-injected"), "<none>");
  EXPECT_EQ(r.header("x-binary"), "<none>");
  EXPECT_EQ(r.header("x-fine"), "caf\xc3\xa9");
  EXPECT_EQ(r.body, "{}");
}

TEST_F(HttpSinkTest, AnIdThatCannotBeAHeaderIsRejectedWithoutARequest) {
  TestServer server(ok);
  auto sink = create(spec(server.url()));
  ASSERT_TRUE(sink);

  SendResult result = sendAndWait(*sink, message("{}", "abc\r\nX-Injected: 1"));

  EXPECT_EQ(result.status, SendStatus::Reject);
  EXPECT_NE(result.reason.find("Idempotency-Key"), std::string::npos) << result.reason;
  EXPECT_TRUE(server.received().empty());
}

TEST_F(HttpSinkTest, ClassifiesStatuses) {
  // given: the server answers with the status the path names
  TestServer server([](const Received& r) {
    Reply reply;
    reply.status = static_cast<unsigned>(std::stoi(r.target.substr(1)));
    reply.body = "status " + r.target.substr(1) + " body";
    return reply;
  });
  struct Case {
    int status;
    SendStatus expected;
    std::string reason;  // "" for Ok
  };
  const Case cases[] = {
      {200, SendStatus::Ok, ""},
      {201, SendStatus::Ok, ""},
      {204, SendStatus::Ok, ""},
      {503, SendStatus::Retry, "HTTP 503 Service Unavailable from POST URL: status 503 body"},
      {500, SendStatus::Retry, "HTTP 500 Internal Server Error from POST URL: status 500 body"},
      {429, SendStatus::Retry, "HTTP 429 Too Many Requests from POST URL: status 429 body"},
      {408, SendStatus::Retry, "HTTP 408 Request Timeout from POST URL: status 408 body"},
      {409, SendStatus::Retry, "HTTP 409 Conflict from POST URL: status 409 body"},
      {400, SendStatus::Reject, "HTTP 400 Bad Request from POST URL: status 400 body"},
      {404, SendStatus::Reject, "HTTP 404 Not Found from POST URL: status 404 body"},
      {422, SendStatus::Reject, "HTTP 422 Unprocessable Entity from POST URL: status 422 body"},
      {301, SendStatus::Reject, "HTTP 301 Moved Permanently from POST URL: status 301 body"},
  };
  for (const Case& c : cases) {
    auto s = spec(server.url("/" + std::to_string(c.status)));
    s.retry_statuses = {408, 425, 429, 409};
    auto sink = create(s);
    ASSERT_TRUE(sink);

    SendResult result = sendAndWait(*sink, message("{}"));

    EXPECT_EQ(result.status, c.expected) << c.status << ": " << result.reason;
    std::string reason = c.reason;
    if (auto at = reason.find("URL"); at != std::string::npos) {
      reason.replace(at, 3, server.url("/" + std::to_string(c.status)));
    }
    EXPECT_EQ(result.reason, reason);
  }
}

TEST_F(HttpSinkTest, ReasonHasAPrintableExcerptOfTheBody) {
  // given: a body with line breaks, control characters, invalid UTF-8, and long
  std::string body = "bad\r\n\t\x01input: \xff caf\xc3\xa9 " + std::string(1000, 'x');
  TestServer server([&](const Received&) {
    Reply reply;
    reply.status = 400;
    reply.body = body;
    return reply;
  });
  auto sink = create(spec(server.url()));
  ASSERT_TRUE(sink);

  SendResult result = sendAndWait(*sink, message("{}"));

  EXPECT_EQ(result.status, SendStatus::Reject);
  std::string prefix = "HTTP 400 Bad Request from POST " + server.url() + ": ";
  ASSERT_EQ(result.reason.rfind(prefix, 0), 0u) << result.reason;
  std::string excerpt = result.reason.substr(prefix.size());
  EXPECT_EQ(excerpt.rfind("bad input: \xef\xbf\xbd caf\xc3\xa9 xxx", 0), 0u) << excerpt;
  EXPECT_EQ(excerpt.substr(excerpt.size() - 4), "x...");
  EXPECT_LE(excerpt.size(), 210u);
  EXPECT_TRUE(std::none_of(excerpt.begin(), excerpt.end(),
                           [](char c) { return static_cast<unsigned char>(c) < 0x20; }));
}

TEST_F(HttpSinkTest, LargeResponseBodiesAreNotHeld) {
  // given: 1 MiB bodies, past what is read to keep a connection
  TestServer server([](const Received& r) {
    Reply reply;
    reply.status = r.target == "/big-error" ? 500 : 200;
    reply.body = std::string(1 << 20, 'y');
    if (r.target == "/small") reply.body = std::string(10'000, 'z');
    return reply;
  });
  auto ok_sink = create(spec(server.url("/big")));
  auto error_sink = create(spec(server.url("/big-error")));
  auto small_sink = create(spec(server.url("/small")));
  ASSERT_TRUE(ok_sink && error_sink && small_sink);

  // when / then: the status decides; the connection is not reused
  EXPECT_EQ(sendAndWait(*ok_sink, message("{}")).status, SendStatus::Ok);
  EXPECT_EQ(sendAndWait(*ok_sink, message("{}")).status, SendStatus::Ok);
  EXPECT_EQ(server.accepted(), 2);
  SendResult error = sendAndWait(*error_sink, message("{}"));
  EXPECT_EQ(error.status, SendStatus::Retry);
  EXPECT_NE(error.reason.find("HTTP 500 Internal Server Error from POST"), std::string::npos)
      << error.reason;
  EXPECT_LT(error.reason.size(), 400u);
  // A body within the limit is read to the end and the connection kept.
  EXPECT_EQ(sendAndWait(*small_sink, message("{}")).status, SendStatus::Ok);
  EXPECT_EQ(sendAndWait(*small_sink, message("{}")).status, SendStatus::Ok);
  EXPECT_EQ(server.accepted(), 4);
}

// --- Connections -----------------------------------------------------------------------------

TEST_F(HttpSinkTest, SequentialRequestsShareOneConnection) {
  TestServer server(ok);
  auto sink = create(spec(server.url()));
  ASSERT_TRUE(sink);

  for (int i = 0; i < 10; ++i) {
    SendResult result = sendAndWait(*sink, message("{}"));
    ASSERT_EQ(result.status, SendStatus::Ok) << result.reason;
  }

  EXPECT_EQ(server.accepted(), 1);
  EXPECT_EQ(server.received().size(), 10u);
}

TEST_F(HttpSinkTest, AtMostConnectionsRequestsAtATimeTheRestQueued) {
  // given: two connections, a server that holds every response
  TestServer server([](const Received&) {
    Reply reply;
    reply.hold = true;
    return reply;
  });
  auto s = spec(server.url());
  s.connections = 2;
  auto sink = create(s);
  ASSERT_TRUE(sink);

  // when
  std::vector<Outcome> outcomes;
  std::vector<std::string> values;
  for (int i = 0; i < 5; ++i) values.push_back(R"({"n":)" + std::to_string(i) + "}");
  for (const auto& value : values) outcomes.push_back(send(*sink, message(value)));
  EXPECT_EQ(sink->queued(), 3u);
  ASSERT_TRUE(runUntil([&] { return server.active() == 2; }));
  runFor(100ms);

  // then
  EXPECT_EQ(server.active(), 2);
  EXPECT_EQ(server.accepted(), 2);
  EXPECT_EQ(sink->queued(), 3u);
  for (const auto& outcome : outcomes) EXPECT_FALSE(outcome->has_value());

  server.release();
  ASSERT_TRUE(runUntil([&] {
    return std::all_of(outcomes.begin(), outcomes.end(), [](auto& o) { return o->has_value(); });
  }));
  for (const auto& outcome : outcomes) EXPECT_EQ((*outcome)->status, SendStatus::Ok);
  EXPECT_EQ(server.maxActive(), 2);
  EXPECT_EQ(server.accepted(), 2);
  EXPECT_EQ(sink->queued(), 0u);
  // FIFO: the queued ones went out in the order they were sent.
  auto received = server.received();
  ASSERT_EQ(received.size(), 5u);
  for (size_t i = 2; i < 5; ++i) EXPECT_EQ(received[i].body, values[i]);
}

TEST_F(HttpSinkTest, ConnectionCloseFromTheServerIsFollowed) {
  TestServer server([](const Received&) {
    Reply reply;
    reply.close = true;
    return reply;
  });
  auto sink = create(spec(server.url()));
  ASSERT_TRUE(sink);

  for (int i = 0; i < 3; ++i) {
    SendResult result = sendAndWait(*sink, message("{}"));
    EXPECT_EQ(result.status, SendStatus::Ok) << result.reason;
  }

  EXPECT_EQ(server.accepted(), 3);
  EXPECT_EQ(server.received().size(), 3u);
}

TEST_F(HttpSinkTest, AnIdleConnectionTheServerClosedIsReplacedWithoutAFailure) {
  // given: a server that closes each connection right after a keep-alive response, as one
  // whose idle timeout passed would
  TestServer server([](const Received&) {
    Reply reply;
    reply.drop_after = true;
    return reply;
  });
  auto sink = create(spec(server.url()));
  ASSERT_TRUE(sink);

  for (int i = 0; i < 3; ++i) {
    SendResult result = sendAndWait(*sink, message("{}"));
    EXPECT_EQ(result.status, SendStatus::Ok) << result.reason;
    runFor(20ms);  // the server's close arrives
  }

  EXPECT_EQ(server.accepted(), 3);
  EXPECT_EQ(server.received().size(), 3u);
}

TEST_F(HttpSinkTest, ANeverAnsweringServerTimesOut) {
  TestServer server([](const Received&) {
    Reply reply;
    reply.never = true;
    return reply;
  });
  auto s = spec(server.url());
  s.timeout = 300ms;
  auto sink = create(s);
  ASSERT_TRUE(sink);

  auto start = std::chrono::steady_clock::now();
  SendResult result = sendAndWait(*sink, message("{}"));
  auto took = std::chrono::steady_clock::now() - start;

  EXPECT_EQ(result.status, SendStatus::Retry);
  EXPECT_EQ(result.reason,
            "timeout after 300ms waiting for the response (POST " + server.url() + ")");
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 1500ms);
  // The connection was closed, and the next request gets a new one.
  EXPECT_TRUE(runUntil([&] { return server.open() == 0; }));
  EXPECT_EQ(sendAndWait(*sink, message("{}")).status, SendStatus::Retry);
  EXPECT_EQ(server.accepted(), 2);
}

TEST_F(HttpSinkTest, RefusedConnectionIsRetry) {
  // given: a port nobody listens on
  uint16_t port;
  {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = acceptor.local_endpoint().port();
  }
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/events";
  auto sink = create(spec(url));
  ASSERT_TRUE(sink);

  SendResult result = sendAndWait(*sink, message("{}"));

  EXPECT_EQ(result.status, SendStatus::Retry);
  EXPECT_EQ(result.reason, "cannot connect to 127.0.0.1:" + std::to_string(port) +
                               ": Connection refused (POST " + url + ")");
}

// --- Lifecycle -------------------------------------------------------------------------------

TEST_F(HttpSinkTest, CloseCompletesPendingSendsWithRetryAndRefusesNewOnes) {
  // given: one in flight, two queued
  TestServer server([](const Received&) {
    Reply reply;
    reply.hold = true;
    return reply;
  });
  auto s = spec(server.url());
  s.connections = 1;
  auto sink = create(s);
  ASSERT_TRUE(sink);
  std::vector<Outcome> outcomes;
  for (int i = 0; i < 3; ++i) outcomes.push_back(send(*sink, message("{}")));
  ASSERT_TRUE(runUntil([&] { return server.active() == 1; }));
  EXPECT_EQ(sink->queued(), 2u);

  // when
  sink->close();

  // then: completed later, on the io_context, never from inside close()
  for (const auto& outcome : outcomes) EXPECT_FALSE(outcome->has_value());
  EXPECT_EQ(sink->queued(), 0u);
  Outcome late = send(*sink, message("{}"));
  outcomes.push_back(late);
  ASSERT_TRUE(runUntil([&] {
    return std::all_of(outcomes.begin(), outcomes.end(), [](auto& o) { return o->has_value(); });
  }));
  for (const auto& outcome : outcomes) {
    EXPECT_EQ((*outcome)->status, SendStatus::Retry);
    EXPECT_EQ((*outcome)->reason, "sink closed (POST " + server.url() + ")");
  }
  // The connection is closed: the held response cannot be written, the server sees it end.
  server.release();
  EXPECT_TRUE(runUntil([&] { return server.open() == 0; }));
  EXPECT_EQ(server.received().size(), 1u);
}

TEST_F(HttpSinkTest, DestroyingTheSinkWithRequestsInFlightIsSafe) {
  // given: requests at every stage: held by the server, queued
  TestServer server([](const Received&) {
    Reply reply;
    reply.hold = true;
    return reply;
  });
  auto s = spec(server.url());
  s.connections = 2;
  auto sink = create(s);
  ASSERT_TRUE(sink);
  std::vector<Outcome> outcomes;
  for (int i = 0; i < 4; ++i) outcomes.push_back(send(*sink, message("{}")));
  ASSERT_TRUE(runUntil([&] { return server.active() == 2; }));

  // when
  sink.reset();
  server.release();

  // then: every send completes once (Retry), and what was pending ends without touching the
  // sink (run under -DKPIPE_SANITIZE=address to see it)
  ASSERT_TRUE(runUntil([&] {
    return std::all_of(outcomes.begin(), outcomes.end(), [](auto& o) { return o->has_value(); });
  }));
  for (const auto& outcome : outcomes) EXPECT_EQ((*outcome)->status, SendStatus::Retry);
  EXPECT_TRUE(runUntil([&] { return server.open() == 0; }));
  runFor(50ms);
}

TEST_F(HttpSinkTest, DestroyingTheSinkWhileConnectingIsSafe) {
  TestServer server(ok);
  auto sink = create(spec(server.url()));
  ASSERT_TRUE(sink);
  Outcome outcome = send(*sink, message("{}"));  // the resolve has started

  sink.reset();

  ASSERT_TRUE(runUntil([&] { return outcome->has_value(); }));
  EXPECT_EQ((*outcome)->status, SendStatus::Retry);
  runFor(50ms);
  EXPECT_TRUE(server.received().empty());
}

// --- TLS -------------------------------------------------------------------------------------

// A CA, a certificate it signed for 127.0.0.1 and localhost, and one for another name, made
// with the openssl command for this test run.
class HttpSinkTlsTest : public HttpSinkTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() /
           ("kpipe-http-sink-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    write("ca.cnf",
          "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n"
          "[dn]\nCN = kpipe test CA\n"
          "[ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign\n"
          "subjectKeyIdentifier = hash\n");
    write("leaf.cnf", "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = kpipe test\n");
    write("good.ext",
          "basicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n"
          "subjectAltName = DNS:localhost,IP:127.0.0.1\n");
    write("other.ext",
          "basicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n"
          "subjectAltName = DNS:other.example\n");
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::string script = "cd '" + dir_.string() + "' && (openssl req -x509 -config ca.cnf" + key +
                         " -keyout ca.key -out ca.pem -days 2";
    for (const char* name : {"good", "other"}) {
      std::string n = name;
      script += " && openssl req -new -config leaf.cnf" + key + " -keyout " + n + ".key -out " + n +
                ".csr" + " && openssl x509 -req -in " + n +
                ".csr -CA ca.pem -CAkey ca.key -set_serial " + (n == "good" ? "2" : "3") +
                " -days 2 -extfile " + n + ".ext -out " + n + ".pem";
    }
    script += ") > openssl.log 2>&1";
    if (std::system(script.c_str()) != 0) {
      std::ifstream log(dir_ / "openssl.log");
      error_ = "openssl failed: " + std::string(std::istreambuf_iterator<char>(log), {});
    }
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  void SetUp() override { ASSERT_TRUE(error_.empty()) << error_; }

  static void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  static std::unique_ptr<ssl::context> serverContext(const std::string& name) {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
    context->use_certificate_chain_file((dir_ / (name + ".pem")).string());
    context->use_private_key_file((dir_ / (name + ".key")).string(), ssl::context::pem);
    return context;
  }
  static std::string ca() { return (dir_ / "ca.pem").string(); }

  static inline std::filesystem::path dir_;
  static inline std::string error_;
};

TEST_F(HttpSinkTlsTest, VerifiesTheServerWithTheConfiguredCa) {
  TestServer server(ok, serverContext("good"));
  auto s = spec(server.url());
  s.ca_file = ca();
  auto sink = create(s);
  ASSERT_TRUE(sink);

  for (int i = 0; i < 3; ++i) {
    SendResult result = sendAndWait(*sink, message(R"({"tls":true})", "id-1"));
    EXPECT_EQ(result.status, SendStatus::Ok) << result.reason;
  }

  EXPECT_EQ(server.accepted(), 1);  // keep-alive over TLS too
  auto received = server.received();
  ASSERT_EQ(received.size(), 3u);
  EXPECT_EQ(received[0].body, R"({"tls":true})");
  EXPECT_EQ(received[0].header("idempotency-key"), "id-1");
  EXPECT_EQ(received[0].sni, "");  // an address is never sent as SNI
}

TEST_F(HttpSinkTlsTest, SendsTheHostNameAsSni) {
  TestServer server(ok, serverContext("good"));
  auto s = spec("https://localhost:" + std::to_string(server.port()) + "/events");
  s.ca_file = ca();
  auto sink = create(s);
  ASSERT_TRUE(sink);

  SendResult result = sendAndWait(*sink, message("{}"));

  EXPECT_EQ(result.status, SendStatus::Ok) << result.reason;
  auto received = server.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].sni, "localhost");
  EXPECT_EQ(received[0].header("host"), "localhost:" + std::to_string(server.port()));
}

TEST_F(HttpSinkTlsTest, TheSystemStoreDoesNotTrustTheTestCa) {
  TestServer server(ok, serverContext("good"));
  auto sink = create(spec(server.url()));  // no ca_file
  ASSERT_TRUE(sink);

  SendResult result = sendAndWait(*sink, message("{}"));

  EXPECT_EQ(result.status, SendStatus::Retry);
  EXPECT_EQ(result.reason.rfind("TLS handshake with 127.0.0.1:" + std::to_string(server.port()) +
                                    " failed: certificate verify failed",
                                0),
            0u)
      << result.reason;
  EXPECT_NE(result.reason.find("unable to get local issuer certificate"), std::string::npos)
      << result.reason;
  EXPECT_TRUE(server.received().empty());
}

TEST_F(HttpSinkTlsTest, ACertificateForAnotherHostIsRefused) {
  TestServer server(ok, serverContext("other"));
  auto s = spec(server.url());
  s.ca_file = ca();
  auto sink = create(s);
  ASSERT_TRUE(sink);

  SendResult result = sendAndWait(*sink, message("{}"));

  EXPECT_EQ(result.status, SendStatus::Retry);
  EXPECT_NE(result.reason.find("certificate verify failed"), std::string::npos) << result.reason;
  EXPECT_NE(result.reason.find("IP address mismatch"), std::string::npos) << result.reason;
  EXPECT_TRUE(server.received().empty());
}

TEST_F(HttpSinkTlsTest, ACertificateForAnotherHostNameIsRefused) {
  TestServer server(ok, serverContext("other"));
  auto s = spec("https://localhost:" + std::to_string(server.port()) + "/events");
  s.ca_file = ca();
  auto sink = create(s);
  ASSERT_TRUE(sink);

  SendResult result = sendAndWait(*sink, message("{}"));

  EXPECT_EQ(result.status, SendStatus::Retry);
  EXPECT_NE(result.reason.find("hostname mismatch"), std::string::npos) << result.reason;
  EXPECT_TRUE(server.received().empty());
}

TEST_F(HttpSinkTlsTest, AnIdleTlsConnectionTheServerClosedIsReplaced) {
  TestServer server(
      [](const Received&) {
        Reply reply;
        reply.drop_after = true;
        return reply;
      },
      serverContext("good"));
  auto s = spec(server.url());
  s.ca_file = ca();
  auto sink = create(s);
  ASSERT_TRUE(sink);

  for (int i = 0; i < 3; ++i) {
    SendResult result = sendAndWait(*sink, message("{}"));
    EXPECT_EQ(result.status, SendStatus::Ok) << result.reason;
    runFor(20ms);
  }

  EXPECT_EQ(server.accepted(), 3);
}

}  // namespace
}  // namespace kpipe::sinks
