#include "tests/support/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace kpipe::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kBinary = "redis-server";

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// A port the kernel just handed out; another process may take it before redis-server binds
// it, which start() notices and retries.
uint16_t freePort() {
  Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in address = loopback(0);
  socklen_t length = sizeof address;
  if (fd.get() < 0 || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::runtime_error(std::string("cannot find a free port: ") + std::strerror(errno));
  }
  return ntohs(address.sin_port);
}

// Anything Redis says to an inline PING (+PONG, or -NOAUTH with a password) means it serves.
bool answersPing(uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in address = loopback(port);
  if (fd.get() < 0 ||
      ::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    return false;
  }
  constexpr std::string_view ping = "PING\r\n";
  if (::send(fd.get(), ping.data(), ping.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(ping.size())) {
    return false;
  }
  pollfd readable{fd.get(), POLLIN, 0};
  char first = 0;
  return ::poll(&readable, 1, 1000) == 1 && ::recv(fd.get(), &first, 1, 0) == 1 &&
         (first == '+' || first == '-');
}

bool exited(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == pid;
}

}  // namespace

std::optional<std::string> redisServerMissing() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path == nullptr ? "" : path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && ::access((fs::path(dir) / kBinary).c_str(), X_OK) == 0) {
      return std::nullopt;
    }
  }
  return std::string(kBinary) + " is not on PATH (apt-get install redis-server)";
}

bool runningOnCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && (std::strcmp(ci, "true") == 0 || std::strcmp(ci, "1") == 0);
}

RedisServer::RedisServer(std::string password) : password_(std::move(password)) {
  std::string pattern = (fs::temp_directory_path() / "kpipe-redis-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  dir_ = pattern;
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = freePort();
    if (start()) return;
  }
  const std::string log = logTail();
  fs::remove_all(dir_);
  throw std::runtime_error("redis-server did not start: " + log);
}

RedisServer::~RedisServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

bool RedisServer::start() {
  const std::string port = std::to_string(port_);
  const std::string log = (dir_ / "redis.log").string();
  std::vector<std::string> args = {
      kBinary,        "--port", port,    "--bind",      host_,       "--save", "",
      "--appendonly", "no",     "--dir", dir_.string(), "--logfile", log};
  if (!password_.empty()) {
    args.push_back("--requirepass");
    args.push_back(password_);
  }
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  // Everything the child needs is built before fork: only async-signal-safe calls after it.
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // A test that crashes must not leave Redis running.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::execvp(kBinary, argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (exited(pid_)) {
      pid_ = -1;
      return false;
    }
    if (answersPing(port_)) return true;
    std::this_thread::sleep_for(10ms);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  throw std::runtime_error("redis-server did not answer PING within 10 s: " + logTail());
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  ::kill(pid_, SIGCONT);  // a paused server handles SIGTERM only once it runs
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!exited(pid_)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  pid_ = -1;
}

void RedisServer::pause() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void RedisServer::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

void RedisServer::restart() {
  stop();
  // The port was ours a moment ago; should another process take it meanwhile, retry a little.
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (start()) return;
    std::this_thread::sleep_for(50ms);
  }
  throw std::runtime_error("redis-server did not restart on port " + std::to_string(port_) + ": " +
                           logTail());
}

std::string RedisServer::logTail() const {
  std::ifstream in(dir_ / "redis.log");
  std::stringstream text;
  text << in.rdbuf();
  std::string log = text.str();
  constexpr size_t kTail = 2000;
  return log.size() > kTail ? "..." + log.substr(log.size() - kTail) : log;
}

}  // namespace kpipe::testing
