#pragma once
// Watches the directories a config is read from (kpipe.yaml's, the pipelines directory, the
// schema directories) with inotify and calls back once the files have been quiet for `debounce`.
//
// Directories, not files: editors and tools replace a file by writing a temporary one and
// renaming it over the original (vim, sed -i, Kubernetes ConfigMap volumes swapping their
// `..data` symlink), which a watch on the file itself would lose. Editors' temporary and backup
// files (`.x.swp`, `x~`, `#x#`, `.#x`, vim's `4913`) are ignored; any other change counts, and a
// change that turns out to change nothing costs one reload that finds no difference.
//
// Threading: everything runs on the io_context thread, woken by the inotify descriptor.

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace kpipe::app {

class ConfigWatch {
 public:
  // `changed` gets the time of the first change of the burst that the debounce closed.
  using Callback = std::function<void(std::chrono::steady_clock::time_point first_change)>;

  ConfigWatch(boost::asio::io_context& io, std::chrono::milliseconds debounce, Callback changed);
  ~ConfigWatch();
  ConfigWatch(const ConfigWatch&) = delete;
  ConfigWatch& operator=(const ConfigWatch&) = delete;

  // Watches exactly these directories from now on (missing ones are skipped with a warning and
  // retried at the next call). Returns an error when inotify itself is unavailable.
  std::optional<std::string> watch(const std::set<std::filesystem::path>& dirs);

  // True for the names of editors' temporary and backup files.
  static bool ignored(std::string_view name);

 private:
  void read();
  void onEvents(size_t bytes);
  void changed();

  boost::asio::io_context& io_;
  std::chrono::milliseconds debounce_;
  Callback callback_;
  int fd_ = -1;
  std::optional<boost::asio::posix::stream_descriptor> stream_;
  boost::asio::steady_timer quiet_;
  std::optional<std::chrono::steady_clock::time_point> first_change_;
  std::map<int, std::filesystem::path> watches_;  // watch descriptor -> directory
  alignas(8) std::array<char, 16384> buffer_{};
};

}  // namespace kpipe::app
