#pragma once
// The daemon: owns the io_context and wires every production part together (the one place
// where that happens). Builds, starts and stops them in order.
//
// Lifecycle: run() blocks until SIGTERM/SIGINT has drained and stopped every pipeline (exit
// code 0) or start-up failed (non-zero). A second signal during the drain exits at once.
// Threading: one io_context thread runs the HTTP server and every pipeline.

#include "daemon/config/spec.h"

#include <string>

namespace kpipe::app {

// `kpipe run`: runs the config until a stop signal. Returns the process exit code.
int run(const config::Config& config);

// `kpipe check`: loads the config and compiles its schemas. Prints every error; returns the
// process exit code.
int check(const std::string& config_file);

// `kpipe broker`: a standalone embedded broker for development. Returns the exit code.
struct BrokerOptions {
  int brokers = 1;
  int default_partitions = 4;
  std::vector<std::pair<std::string, int>> topics;  // partitions 0 = default_partitions
};
int broker(const BrokerOptions& options);

}  // namespace kpipe::app
