#include "daemon/app/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>

namespace kpipe::app {
namespace {

void send(const std::string& state) {
  // unset_environment = 0: a reload sends READY=1 again later. Without NOTIFY_SOCKET sd_notify
  // returns 0 at once; a failure (< 0) is ignored on purpose (see the header).
  (void)sd_notify(0, state.c_str());
}

}  // namespace

void notifyReady() { send("READY=1\nSTATUS=running"); }

void notifyReloading() {
  // The same clock systemd compares with (CLOCK_MONOTONIC, not std::chrono::steady_clock, whose
  // clock the standard does not name).
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const uint64_t usec =
      static_cast<uint64_t>(now.tv_sec) * 1'000'000 + static_cast<uint64_t>(now.tv_nsec) / 1'000;
  send("RELOADING=1\nSTATUS=reloading the config\nMONOTONIC_USEC=" + std::to_string(usec));
}

void notifyStopping() { send("STOPPING=1\nSTATUS=draining pipelines"); }

void notifyStatus(std::string_view text) {
  std::string state = "STATUS=";
  for (char c : text) state += (c == '\n' || c == '\r') ? ' ' : c;
  send(state);
}

std::optional<std::chrono::microseconds> watchdogInterval() {
  // Without a socket the pings would go nowhere: no timer for them.
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr || *socket == '\0') return std::nullopt;
  uint64_t usec = 0;
  // > 0: enabled for this process (WATCHDOG_PID, when set, is ours); 0: not enabled or another
  // process's; < 0: WATCHDOG_USEC or WATCHDOG_PID unparsable.
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

void notifyWatchdog() { send("WATCHDOG=1"); }

}  // namespace kpipe::app
