// kpipe: argv → subcommand; nothing else.

#include "daemon/app/application.h"
#include "daemon/pipetest/runner.h"
#include "daemon/plan/plan.h"
#include "daemon/replay/replay.h"
#include "daemon/schema/explain.h"
#include "daemon/version.h"

#include <csignal>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr const char* kUsage = R"(usage: kpipe COMMAND [ARGS]

commands:
  run CONFIG        run the pipelines of CONFIG (kpipe.yaml) until SIGTERM/SIGINT;
                    reload it on SIGHUP and when its files change
  check CONFIG [--against OLD_CONFIG_DIR]
                    validate CONFIG, its pipelines and schemas; exit 1 on any error.
                    --against also refuses schema changes that reject data the
                    schemas of OLD_CONFIG_DIR accepted (growth-only evolution;
                    a pipeline opts out with schema_evolution: any)
  explain SCHEMA [DOC|-]
                    with a document (a file, or - for standard input): print every
                    failure, one per line (exit 1), or "valid" (exit 0); without one,
                    print an outline of the schema. Exit 2 when the schema does not
                    compile or a file cannot be read
  test CONFIG [TEST_FILES...] [--json] [--junit FILE] [--record]
                    run the cases of the pipeline test files (default: every
                    *.test.yaml in the pipelines directory) offline; exit 1 on any
                    failure. --record writes the current outcomes as expectations
  plan --throughput MSG/S --message-size SIZE --per-partition MSG/S
       [--latency DURATION] [--brokers N] [--replication-factor N]
       [--retention DURATION] [--headroom X] [--current-partitions N]
       [--unkeyed] [--json]
                    size a topic: partitions, consumers, in-flight messages
                    (Little's law), disk for retention, and warnings
  plan --throughput MSG/S --measure PIPELINE [--config PATH] [--sample FILE]
       [--seconds N|DURATION] [--keys N|sample] [--use-store] [--allow-http] ...
                    measure the per-partition throughput and W of PIPELINE
                    (its real stages, on an embedded broker of its own), then plan
  broker [--brokers N] [--partitions N] [--topic NAME[:PARTITIONS]]...
                    run an embedded (in-memory) Kafka broker for development and
                    print its bootstrap address
  replay CONFIG --from ERROR_TOPIC --to TOPIC [--reason REGEX] [--since TIME]
         [--until TIME] [--dry-run] [--bootstrap HOST:PORT]
                    write the error records of ERROR_TOPIC (as far as it goes now)
                    to TOPIC again, with their original key, value and headers;
                    --reason filters on kpipe.error.reason (ECMAScript regex),
                    --since/--until on the original message's time (RFC 3339 or
                    a duration before now: 30m, 2h, 7d); --dry-run lists them only
  version           print the version
)";

int usage(int code) {
  (code == 0 ? std::cout : std::cerr) << kUsage;
  return code;
}

bool parseInt(std::string_view text, int& out) {
  try {
    size_t used = 0;
    out = std::stoi(std::string(text), &used);
    return used == text.size() && out > 0;
  } catch (const std::exception&) {
    return false;
  }
}

int brokerCommand(const std::vector<std::string_view>& args) {
  kpipe::app::BrokerOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    auto needValue = [&](std::string_view flag) -> std::string_view {
      if (i + 1 >= args.size()) {
        std::cerr << "kpipe broker: " << flag << " needs a value\n";
        std::exit(2);
      }
      return args[++i];
    };
    if (args[i] == "--brokers") {
      if (!parseInt(needValue("--brokers"), options.brokers)) return usage(2);
    } else if (args[i] == "--partitions") {
      if (!parseInt(needValue("--partitions"), options.default_partitions)) return usage(2);
    } else if (args[i] == "--topic") {
      std::string_view spec = needValue("--topic");
      int partitions = 0;
      auto colon = spec.rfind(':');
      if (colon != std::string_view::npos) {
        if (!parseInt(spec.substr(colon + 1), partitions)) {
          std::cerr << "kpipe broker: --topic " << spec
                    << ": partitions must be a positive number\n";
          return 2;
        }
        spec = spec.substr(0, colon);
      }
      options.topics.emplace_back(std::string(spec), partitions);
    } else {
      std::cerr << "kpipe broker: unknown argument " << args[i] << "\n";
      return usage(2);
    }
  }
  return kpipe::app::broker(options);
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that closed its connection (Redis, an HTTP endpoint, a pipe to `head`) is an error
  // on that write, not a reason to die: hiredis writes with write(2), which raises SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) return usage(2);
  std::string_view command = args[0];
  std::vector<std::string_view> rest(args.begin() + 1, args.end());
  if (command == "version" || command == "--version") {
    std::cout << "kpipe " << kpipe::kVersion << "\n";
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") return usage(0);
  if (command == "check") {
    std::optional<std::string> config_file;
    std::optional<std::string> against;
    for (size_t i = 0; i < rest.size(); ++i) {
      if (rest[i] == "--against" && i + 1 < rest.size() && !against) {
        against = std::string(rest[++i]);
      } else if (!rest[i].starts_with("-") && !config_file) {
        config_file = std::string(rest[i]);
      } else {
        return usage(2);
      }
    }
    if (!config_file) return usage(2);
    return kpipe::app::check(*config_file, against);
  }
  if (command == "explain") {
    for (auto arg : rest) {
      if (arg == "--help" || arg == "-h") return usage(0);
    }
    return kpipe::schema::explainCommand(rest, std::cin, std::cout, std::cerr);
  }
  if (command == "run") {
    if (rest.size() != 1) return usage(2);
    return kpipe::app::run(std::string(rest[0]));
  }
  if (command == "test") return kpipe::pipetest::testCommand(rest, std::cout, std::cerr);
  if (command == "broker") return brokerCommand(rest);
  if (command == "plan") {
    for (auto arg : rest) {
      if (arg == "--help" || arg == "-h") return usage(0);
    }
    return kpipe::plan::planCommand(rest, std::cout, std::cerr);
  }
  if (command == "replay") {
    for (auto arg : rest) {
      if (arg == "--help" || arg == "-h") return usage(0);
    }
    auto parsed = kpipe::replay::parseArgs(rest, kpipe::replay::nowMillis());
    if (auto* error = std::get_if<std::string>(&parsed)) {
      std::cerr << "kpipe replay: " << *error << "\n";
      return usage(2);
    }
    return kpipe::replay::run(std::get<kpipe::replay::Options>(parsed), std::cout, std::cerr);
  }
  std::cerr << "kpipe: unknown command " << command << "\n";
  return usage(2);
}
