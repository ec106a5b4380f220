#include "daemon/app/config_watch.h"

#include "daemon/observe/log.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kpipe::app {
namespace log = observe::log;

namespace {

// Creations, writes that finished, renames in and out, deletions: every way a file in the
// directory can come to read differently. IN_MODIFY alone would fire mid-write.
constexpr uint32_t kEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                             IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB;

}  // namespace

ConfigWatch::ConfigWatch(boost::asio::io_context& io, std::chrono::milliseconds debounce,
                         Callback changed)
    : io_(io), debounce_(debounce), callback_(std::move(changed)), quiet_(io) {}

ConfigWatch::~ConfigWatch() {
  quiet_.cancel();
  if (stream_) {
    boost::system::error_code ignored;
    stream_->close(ignored);  // closes fd_ as well
  }
}

bool ConfigWatch::ignored(std::string_view name) {
  if (name.empty()) return false;
  if (name.ends_with("~") || name.ends_with(".swp") || name.ends_with(".swx") ||
      name.ends_with(".swo") || name.ends_with(".tmp") || name.ends_with(".kate-swp")) {
    return true;
  }
  if (name.starts_with(".#") || (name.starts_with("#") && name.ends_with("#"))) return true;
  return name == "4913";  // vim's probe for whether it may write in the directory
}

std::optional<std::string> ConfigWatch::watch(const std::set<std::filesystem::path>& dirs) {
  if (fd_ < 0) {
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) return std::string("inotify_init1: ") + std::strerror(errno);
    stream_.emplace(io_, fd_);
    read();
  }
  std::map<int, std::filesystem::path> watches;
  for (const auto& dir : dirs) {
    // Adding a watch for a watched directory returns the same descriptor.
    const int wd = ::inotify_add_watch(fd_, dir.c_str(), kEvents | IN_ONLYDIR);
    if (wd < 0) {
      log::warn("cannot watch a config directory: changes there need SIGHUP",
                {{"dir", dir.string()}, {"error", std::strerror(errno)}});
      continue;
    }
    watches[wd] = dir;
  }
  for (const auto& [wd, dir] : watches_) {
    if (!watches.contains(wd)) ::inotify_rm_watch(fd_, wd);
  }
  watches_ = std::move(watches);
  return std::nullopt;
}

void ConfigWatch::read() {
  stream_->async_read_some(
      boost::asio::buffer(buffer_), [this](const boost::system::error_code& ec, size_t bytes) {
        if (ec == boost::asio::error::operation_aborted) return;
        if (ec) {
          log::error("config watch stopped: changes need SIGHUP now", {{"error", ec.message()}});
          return;
        }
        onEvents(bytes);
        read();
      });
}

void ConfigWatch::onEvents(size_t bytes) {
  bool relevant = false;
  for (size_t at = 0; at + sizeof(inotify_event) <= bytes;) {
    inotify_event event;
    std::memcpy(&event, buffer_.data() + at, sizeof(event));
    std::string_view name;
    if (event.len > 0) {
      const char* text = buffer_.data() + at + sizeof(inotify_event);
      name = std::string_view(text, ::strnlen(text, event.len));
    }
    at += sizeof(inotify_event) + event.len;
    if (event.mask & IN_Q_OVERFLOW) {
      relevant = true;  // events were lost: assume the worst
      continue;
    }
    if (event.mask & IN_IGNORED) {
      watches_.erase(event.wd);  // the directory went away; the next watch() adds it again
      relevant = true;
      continue;
    }
    if (!ignored(name)) relevant = true;
  }
  if (relevant) changed();
}

void ConfigWatch::changed() {
  if (!first_change_) first_change_ = std::chrono::steady_clock::now();
  // Each change restarts the quiet period: a burst (an editor's write, rename and chmod; a
  // `cp -r` of a directory) is one reload, after it ends.
  quiet_.expires_after(debounce_);
  quiet_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    auto first = *first_change_;
    first_change_.reset();
    callback_(first);
  });
}

}  // namespace kpipe::app
