#include "daemon/observe/http_server.h"

#include "daemon/observe/log.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>

namespace kpipe::observe {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kReadTimeout = std::chrono::seconds(30);

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<std::map<std::string, HttpHandler>> routes)
      : stream_(std::move(socket)), routes_(std::move(routes)) {}

  void start() { read(); }

 private:
  void read() {
    request_ = {};
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(uint64_t{64} << 10);
    stream_.expires_after(kReadTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->onRead(ec); });
  }

  void onRead(beast::error_code ec) {
    if (ec) {
      // Closed by the peer, timed out or malformed: nothing to answer.
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      return;
    }
    request_ = parser_->release();
    HttpResponse answer;
    std::string target(request_.target());
    if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
    auto it = routes_->find(target);
    if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      answer = {405, "text/plain; charset=utf-8", "method not allowed\n"};
    } else if (it == routes_->end()) {
      answer = {404, "text/plain; charset=utf-8", "not found\n"};
    } else {
      answer = it->second();
    }
    response_ = {};
    response_.result(answer.status);
    response_.version(request_.version());
    response_.set(http::field::server, "kpipe");
    response_.set(http::field::content_type, answer.content_type);
    response_.keep_alive(request_.keep_alive());
    if (request_.method() != http::verb::head) response_.body() = std::move(answer.body);
    response_.prepare_payload();
    http::async_write(
        stream_, response_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->onWrite(ec); });
  }

  void onWrite(beast::error_code ec) {
    if (ec || !response_.keep_alive()) {
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      return;
    }
    read();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  std::shared_ptr<std::map<std::string, HttpHandler>> routes_;
};

}  // namespace

HttpServer::HttpServer(asio::io_context& io)
    : io_(io), acceptor_(io), routes_(std::make_shared<std::map<std::string, HttpHandler>>()) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(std::string path, HttpHandler handler) {
  (*routes_)[std::move(path)] = std::move(handler);
}

std::optional<std::string> HttpServer::start(const std::string& address, uint16_t port) {
  beast::error_code ec;
  auto ip = asio::ip::make_address(address, ec);
  if (ec) return "invalid listen address \"" + address + "\": " + ec.message();
  tcp::endpoint endpoint(ip, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor_.close();
    return "cannot listen on " + address + ":" + std::to_string(port) + ": " + ec.message();
  }
  accept();
  return std::nullopt;
}

void HttpServer::stop() {
  beast::error_code ec;
  acceptor_.close(ec);
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  auto endpoint = acceptor_.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void HttpServer::accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) std::make_shared<Session>(std::move(socket), routes_)->start();
    if (acceptor_.is_open()) accept();
  });
}

}  // namespace kpipe::observe
