// systemd_notify.h against a real AF_UNIX datagram socket as NOTIFY_SOCKET, as systemd gives a
// Type=notify service: the exact datagrams, the sender's pid (NotifyAccess=main accepts only
// the main process), and WATCHDOG_USEC/WATCHDOG_PID as sd_watchdog_enabled(3) reads them.
#include "daemon/app/systemd_notify.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace kpipe::app {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Datagram {
  std::string text;
  pid_t pid = 0;  // the sender, from SCM_CREDENTIALS
};

uint64_t monotonicUsec() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000 + static_cast<uint64_t>(now.tv_nsec) / 1'000;
}

class SystemdNotifyTest : public ::testing::Test {
 protected:
  static constexpr const char* kVariables[] = {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"};

  void SetUp() override {
    for (const char* name : kVariables) {
      if (const char* value = std::getenv(name)) saved_[name] = value;
      unsetenv(name);
    }
    char dir[] = "/tmp/kpipe-notify-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr) << std::strerror(errno);
    dir_ = dir;
    path_ = (dir_ / "notify.sock").string();
    bindSocket(path_);
  }

  void TearDown() override {
    if (fd_ >= 0) close(fd_);
    fs::remove_all(dir_);
    for (const char* name : kVariables) {
      auto it = saved_.find(name);
      if (it == saved_.end()) {
        unsetenv(name);
      } else {
        setenv(name, it->second.c_str(), 1);
      }
    }
  }

  // `address`: a path, or "@name" for the abstract namespace (as in NOTIFY_SOCKET).
  void bindSocket(const std::string& address) {
    if (fd_ >= 0) close(fd_);
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0) << std::strerror(errno);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(address.size(), sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, address.data(), address.size());
    if (address[0] == '@') addr.sun_path[0] = '\0';
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() +
                                            (address[0] == '@' ? 0 : 1));
    ASSERT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), len), 0) << std::strerror(errno);
    // The kernel attaches the sender's credentials to each datagram, as systemd asks it to.
    int on = 1;
    ASSERT_EQ(setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)), 0);
  }

  // The next datagram, or nullopt when none arrives within `timeout`.
  std::optional<Datagram> receive(std::chrono::milliseconds timeout = 2s) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buffer[4096];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    iovec iov{buffer, sizeof(buffer)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    Datagram d{std::string(buffer, static_cast<size_t>(n))};
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
        d.pid = cred.pid;
      }
    }
    return d;
  }

  void useSocket() { setenv("NOTIFY_SOCKET", path_.c_str(), 1); }

  std::map<std::string, std::string> saved_;
  fs::path dir_;
  std::string path_;
  int fd_ = -1;
};

TEST_F(SystemdNotifyTest, ReadyIsSentFromThisProcess) {
  // given
  useSocket();
  // when
  notifyReady();
  // then
  auto d = receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text, "READY=1\nSTATUS=running");
  EXPECT_EQ(d->pid, getpid());
  // NOTIFY_SOCKET stays: READY=1 is sent again after each reload.
  EXPECT_NE(std::getenv("NOTIFY_SOCKET"), nullptr);
}

TEST_F(SystemdNotifyTest, ReloadingCarriesTheMonotonicTimeOfTheCall) {
  useSocket();
  const uint64_t before = monotonicUsec();
  notifyReloading();
  const uint64_t after = monotonicUsec();
  auto d = receive();
  ASSERT_TRUE(d);
  const std::string prefix = "RELOADING=1\nSTATUS=reloading the config\nMONOTONIC_USEC=";
  ASSERT_EQ(d->text.substr(0, prefix.size()), prefix) << d->text;
  const std::string usec = d->text.substr(prefix.size());
  ASSERT_FALSE(usec.empty());
  ASSERT_EQ(usec.find_first_not_of("0123456789"), std::string::npos) << usec;
  EXPECT_GE(std::stoull(usec), before);
  EXPECT_LE(std::stoull(usec), after);
}

TEST_F(SystemdNotifyTest, StoppingStatusAndWatchdogAreSentAsWritten) {
  useSocket();
  notifyStopping();
  notifyStatus("3 pipelines running");
  notifyWatchdog();
  for (const char* expected :
       {"STOPPING=1\nSTATUS=draining pipelines", "STATUS=3 pipelines running", "WATCHDOG=1"}) {
    auto d = receive();
    ASSERT_TRUE(d) << "expected " << expected;
    EXPECT_EQ(d->text, expected);
  }
}

TEST_F(SystemdNotifyTest, AStatusCannotAddAssignments) {
  useSocket();
  notifyStatus("config error\nREADY=1\r\nWATCHDOG=trigger");
  auto d = receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text, "STATUS=config error READY=1  WATCHDOG=trigger");
}

TEST_F(SystemdNotifyTest, AnAbstractSocketIsUsedToo) {
  const std::string name = "@kpipe-notify-test-" + std::to_string(getpid());
  bindSocket(name);
  setenv("NOTIFY_SOCKET", name.c_str(), 1);
  notifyReady();
  auto d = receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text, "READY=1\nSTATUS=running");
}

TEST_F(SystemdNotifyTest, WithoutNotifySocketNothingIsSent) {
  // given: a listening socket that nobody names, and a watchdog setting without a socket
  setenv("WATCHDOG_USEC", "30000000", 1);
  // when
  notifyReady();
  notifyReloading();
  notifyStatus("x");
  notifyStopping();
  notifyWatchdog();
  // then
  EXPECT_FALSE(receive(100ms));
  EXPECT_EQ(watchdogInterval(), std::nullopt);
}

TEST_F(SystemdNotifyTest, ASocketThatIsGoneIsIgnored) {
  useSocket();
  close(fd_);
  fd_ = -1;
  fs::remove(path_);
  notifyReady();  // no crash, no exception, nothing to report
  notifyWatchdog();
}

TEST_F(SystemdNotifyTest, WatchdogIntervalIsWatchdogUsec) {
  useSocket();
  setenv("WATCHDOG_USEC", "30000000", 1);
  EXPECT_EQ(watchdogInterval(), std::chrono::microseconds(30s));
  // Read, not consumed: the environment stays as systemd set it.
  EXPECT_STREQ(std::getenv("WATCHDOG_USEC"), "30000000");
}

TEST_F(SystemdNotifyTest, WatchdogPidOfThisProcessEnablesIt) {
  useSocket();
  setenv("WATCHDOG_USEC", "1500000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  EXPECT_EQ(watchdogInterval(), std::chrono::microseconds(1500ms));
}

TEST_F(SystemdNotifyTest, WatchdogPidOfAnotherProcessDisablesIt) {
  // given: the watchdog is meant for another process (e.g. kpipe's parent in a wrapper script)
  useSocket();
  setenv("WATCHDOG_USEC", "30000000", 1);
  setenv("WATCHDOG_PID", std::to_string(getppid()).c_str(), 1);
  // then
  EXPECT_EQ(watchdogInterval(), std::nullopt);
}

TEST_F(SystemdNotifyTest, NoOrBadWatchdogSettingsDisableIt) {
  useSocket();
  EXPECT_EQ(watchdogInterval(), std::nullopt);  // WATCHDOG_USEC unset
  for (const char* usec : {"0", "", "abc", "-5", "30s"}) {
    setenv("WATCHDOG_USEC", usec, 1);
    EXPECT_EQ(watchdogInterval(), std::nullopt) << "WATCHDOG_USEC=" << usec;
  }
  setenv("WATCHDOG_USEC", "30000000", 1);
  for (const char* pid : {"abc", "0", "-1"}) {
    setenv("WATCHDOG_PID", pid, 1);
    EXPECT_EQ(watchdogInterval(), std::nullopt) << "WATCHDOG_PID=" << pid;
  }
}

}  // namespace
}  // namespace kpipe::app
