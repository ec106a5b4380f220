#pragma once
// `kpipe test`: runs the cases of test files (test_file.h) through a pipeline's real stages
// (pipeline::Router: decode, key, id, type, schema, dedup with a fresh in-memory store) and
// the producer's partitioner, without Kafka or any network, and reports what did not come out
// as expected: as text, JSON or JUnit XML. --record writes the actual outcomes back as the
// expectations.
//
// Everything here is synchronous and runs on the calling thread; no state outlives a call.
// Thread-compatible.

#include "daemon/config/loader.h"
#include "daemon/pipetest/test_file.h"

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kpipe::pipetest {

// What came out of the last message of a case.
struct Outcome {
  pipeline::Route route = pipeline::Route::Output;
  std::string stage;                 // "" for output
  std::string reason;                // "" for output
  std::optional<std::string> key;    // of the written record; nullopt: none, or no key
  std::optional<int32_t> partition;  // output records only
  Headers headers;                   // of the written record (the input's, passed through)
};

struct Mismatch {
  std::string field;     // "route", "key", "partition", "stage", "reason", "headers.traceparent"
  std::string expected;  // as the user would read it: `output`, `contains "at /msg_id"`
  std::string actual;
};

struct CaseResult {
  std::string name;
  config::SourceLocation where;
  Outcome actual;
  std::vector<Mismatch> mismatches;  // empty: passed
  bool passed() const { return mismatches.empty(); }
};

struct FileResult {
  std::string file;                         // as given / displayed
  std::string pipeline;                     // "" when it could not be resolved
  std::vector<config::ConfigError> errors;  // the file could not be read or run
  std::vector<CaseResult> cases;
  int failed() const;
};

struct Report {
  std::string config_file;
  std::vector<config::ConfigError> config_errors;  // CONFIG did not load: nothing ran
  std::vector<FileResult> files;
  bool recorded = false;  // --record: files without errors were rewritten
  int passed() const;
  int failed() const;
  int errors() const;  // config and test-file errors
  bool ok() const { return failed() == 0 && errors() == 0; }
};

// The partition the producer puts `key` in among `partitions`: librdkafka's murmur2
// partitioner, the same hash and sign handling as the Java client's default partitioner.
int32_t partitionFor(std::string_view key, int32_t partitions);

// Every *.test.yaml / *.test.yml in the config's pipelines directory, sorted.
std::vector<std::filesystem::path> discoverTestFiles(const config::Config& config);

// Runs the cases of one parsed file against the pipeline it names (or, without `pipeline:`,
// the pipeline whose file is <stem>.yaml next to it, else the pipeline named <stem>).
FileResult runTestFile(const config::Config& config, const TestFile& file);

struct Options {
  std::filesystem::path config;
  std::vector<std::filesystem::path> test_files;  // empty: discoverTestFiles()
  bool record = false;                            // rewrite every case's expect: with the outcome
};

// Loads CONFIG, reads every test file, runs what could be read (and records, with --record).
Report runTests(const Options& options);

// Reports. Text: PASS/FAIL per case, expected vs actual, then "N passed, N failed".
// Errors (config, test files) are not part of it: print them first, as `kpipe check` does.
void writeText(const Report& report, std::ostream& out);
void writeJson(const Report& report, std::ostream& out);
// JUnit XML: a testsuite per test file, a testcase per case.
void writeJunit(const Report& report, std::ostream& out);

// The text of `file` with every case's expect: replaced by its outcome in `result`. yaml-cpp
// re-emits the document: comments and the original layout of scalars are not kept.
std::string recordedText(const TestFile& file, const FileResult& result);

// `kpipe test CONFIG [TEST_FILES...] [--json] [--junit FILE] [--record]`; the exit status:
// 0 all passed (or recorded), 1 a failure or an error, 2 bad usage.
int testCommand(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err);

inline constexpr std::string_view kTestUsage =
    "test CONFIG [TEST_FILES...] [--json] [--junit FILE] [--record]";

}  // namespace kpipe::pipetest
