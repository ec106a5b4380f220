#include "daemon/observe/http_server.h"

#include "daemon/observe/metrics.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <thread>

namespace kpipe::observe {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A real server on a loopback port, its io_context on a thread; requests over a real socket.
class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.route("/healthz", [] { return HttpResponse{200, "text/plain", "ok\n"}; });
    server_.route("/metrics", [this] {
      return HttpResponse{200, "text/plain; version=0.0.4", metrics_.serialize()};
    });
    ASSERT_FALSE(server_.start("127.0.0.1", 0).has_value());
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    asio::post(io_, [this] { server_.stop(); });
    io_.stop();
    thread_.join();
  }
  // Sends raw request text on one connection; returns everything read until the peer closes.
  std::string exchange(const std::string& request) {
    asio::io_context client;
    tcp::socket socket(client);
    socket.connect({asio::ip::make_address("127.0.0.1"), server_.port()});
    asio::write(socket, asio::buffer(request));
    std::string response;
    boost::system::error_code ec;
    asio::read(socket, asio::dynamic_buffer(response), ec);  // until EOF
    return response;
  }

  asio::io_context io_;
  HttpServer server_{io_};
  Metrics metrics_;
  std::thread thread_;
};

TEST_F(HttpServerTest, ServesARoute) {
  std::string r = exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("\r\n\r\nok\n"), std::string::npos) << r;
}

TEST_F(HttpServerTest, QueryStringIsIgnoredForRouting) {
  std::string r =
      exchange("GET /healthz?verbose=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
}

TEST_F(HttpServerTest, UnknownPathIs404AndOtherMethods405) {
  EXPECT_EQ(exchange("GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .rfind("HTTP/1.1 404", 0),
            0u);
  EXPECT_EQ(
      exchange(
          "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
          .rfind("HTTP/1.1 405", 0),
      0u);
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  std::string r = exchange(
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  size_t first = r.find("HTTP/1.1 200");
  ASSERT_NE(first, std::string::npos);
  EXPECT_NE(r.find("HTTP/1.1 200", first + 1), std::string::npos) << r;
}

TEST_F(HttpServerTest, MalformedRequestClosesWithoutCrashing) {
  exchange("NOT HTTP AT ALL\r\n\r\n");
  // The server still answers afterwards.
  EXPECT_EQ(exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .rfind("HTTP/1.1 200", 0),
            0u);
}

TEST_F(HttpServerTest, MetricsAreExposedInTextFormat) {
  PipelineStats stats(metrics_, "p1");
  stats.ok.Increment(3);
  std::string r = exchange("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(r.find("# TYPE kpipe_messages_total counter"), std::string::npos) << r;
  EXPECT_NE(r.find("kpipe_messages_total{outcome=\"ok\",pipeline=\"p1\"} 3"), std::string::npos)
      << r;
}

TEST(HttpServerStartTest, ReportsABadAddressAndABusyPort) {
  asio::io_context io;
  HttpServer a(io);
  EXPECT_TRUE(a.start("not-an-ip", 0).has_value());
  HttpServer b(io);
  ASSERT_FALSE(b.start("127.0.0.1", 0).has_value());
  HttpServer c(io);
  auto error = c.start("127.0.0.1", b.port());
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("cannot listen on 127.0.0.1:"), std::string::npos) << *error;
}

}  // namespace
}  // namespace kpipe::observe
