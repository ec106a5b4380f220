#pragma once
// A small HTTP/1.1 server for /metrics, /healthz and friends (Boost.Beast).
//
// Runs on the io_context it is given; handlers are called on that io_context's thread and must
// not block. Keep-alive, a read timeout and small request limits: it is an operator endpoint,
// bound to 127.0.0.1 by default.
//
// Lifecycle: construct, add routes, start() (binds; returns the error text on failure),
// stop() closes the acceptor; sessions in progress end on their own.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace kpipe::observe {

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse()>;

class HttpServer {
 public:
  explicit HttpServer(boost::asio::io_context& io);
  ~HttpServer();

  void route(std::string path, HttpHandler handler);
  // Binds and starts accepting. Returns an error message on failure.
  std::optional<std::string> start(const std::string& address, uint16_t port);
  void stop();
  // The bound port (useful when started on port 0).
  uint16_t port() const;

 private:
  void accept();
  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<std::map<std::string, HttpHandler>> routes_;
};

}  // namespace kpipe::observe
