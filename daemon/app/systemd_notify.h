#pragma once
// systemd's notify protocol (sd_notify(3)) for a `Type=notify` unit (systemd/kpipe.service):
// READY=1 once the pipelines run, RELOADING=1 and READY=1 around a config reload, STOPPING=1
// on a stop signal, STATUS= lines, and WATCHDOG=1 pings for `WatchdogSec=`.
//
// Every call is a no-op outside systemd (NOTIFY_SOCKET unset), so `kpipe run` behaves the same
// in a shell, a container or a test. Errors (a socket that went away) are ignored: systemd's
// view of the service is not worth failing a pipeline for. Thread-safe (sd_notify sends each
// message on a socket of its own). NOTIFY_SOCKET stays set: READY=1 is sent again after each
// reload.

#include <chrono>
#include <optional>
#include <string_view>

namespace kpipe::app {

// "READY=1\nSTATUS=running": start-up is over (or a reload is, applied or refused).
void notifyReady();
// "RELOADING=1\nSTATUS=reloading the config\nMONOTONIC_USEC=<CLOCK_MONOTONIC now>": systemd
// ≥ 253 requires MONOTONIC_USEC for Type=notify-reload; older versions ignore it. READY=1
// follows once the reload is over, applied or refused.
void notifyReloading();
// "STOPPING=1\nSTATUS=draining pipelines": a stop signal; the drain has begun.
void notifyStopping();
// "STATUS=<text>", a line shown by `systemctl status`; line breaks become spaces (a line break
// would start another assignment, e.g. READY=1).
void notifyStatus(std::string_view text);

// The interval within which systemd expects WATCHDOG=1 (WATCHDOG_USEC), when it watches this
// process: NOTIFY_SOCKET set, WATCHDOG_USEC a positive number and WATCHDOG_PID unset or ours.
// nullopt otherwise. Ping at half of it (sd_watchdog_enabled(3)).
std::optional<std::chrono::microseconds> watchdogInterval();
// "WATCHDOG=1".
void notifyWatchdog();

}  // namespace kpipe::app
