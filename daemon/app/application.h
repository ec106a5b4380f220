#pragma once
// The daemon: owns the io_context and wires every production part together (the one place
// where that happens). Builds, starts and stops them in order.
//
// Lifecycle: run() blocks until SIGTERM/SIGINT has drained and stopped every pipeline (exit
// code 0) or start-up failed (non-zero). A second signal during the drain exits at once.
// SIGHUP, and a change to the config's files (inotify), reload the config (reload.h,
// supervisor.h). systemd hears READY, RELOADING, STOPPING and watchdog pings (systemd_notify.h).
// Threading: one io_context thread runs the HTTP server and every pipeline; a reload is
// prepared on a thread of its own.

#include "daemon/config/spec.h"

#include <optional>
#include <string>

namespace kpipe::app {

// `kpipe run`: loads CONFIG and runs it until a stop signal, reloading it on SIGHUP and when
// its files change. Prints the config's errors and returns 1 when it cannot start. Returns the
// process exit code.
int run(const std::string& config_file);

// `kpipe check`: loads the config and compiles its schemas; with `against` (the directory of the
// previous config, or its kpipe.yaml), also refuses schema changes that reject data the previous
// schemas accepted (schema_evolution.h). Prints every error; returns the process exit code.
int check(const std::string& config_file, const std::optional<std::string>& against = {});

// `kpipe broker`: a standalone embedded broker for development. Returns the exit code.
struct BrokerOptions {
  int brokers = 1;
  int default_partitions = 4;
  std::vector<std::pair<std::string, int>> topics;  // partitions 0 = default_partitions
};
int broker(const BrokerOptions& options);

}  // namespace kpipe::app
