// GCC 12 with -fsanitize=address reports a false -Wmaybe-uninitialized inside std::regex's
// std::function members (as in schema/pattern.cpp): the pragma must precede every include.
#if defined(__SANITIZE_ADDRESS__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "daemon/pipetest/runner.h"

#include "daemon/dedup/memory_store.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>

namespace kpipe::pipetest {
namespace {

namespace fs = std::filesystem;

// `"text"`, with quotes and line breaks escaped so that nested quotes stay readable.
std::string quoteText(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string show(const std::optional<std::string>& text) {
  return text ? quoteText(*text) : "(none)";
}

std::string showKey(const Outcome& actual) {
  if (actual.route == pipeline::Route::Drop) return "(no record: dropped)";
  return actual.key ? quoteText(*actual.key) : "(no key)";
}

bool samePath(const fs::path& a, const fs::path& b) {
  std::error_code ec1, ec2;
  return fs::weakly_canonical(a, ec1) == fs::weakly_canonical(b, ec2) && !ec1 && !ec2;
}

const config::PipelineSpec* findPipeline(const config::Config& config, const TestFile& file,
                                         std::string& error) {
  auto named = [&](std::string_view name) -> const config::PipelineSpec* {
    for (const auto& p : config.pipelines) {
      if (p.name == name) return &p;
    }
    return nullptr;
  };
  std::string names;
  for (const auto& p : config.pipelines) names += (names.empty() ? "" : ", ") + p.name;
  if (!file.pipeline.empty()) {
    if (const auto* p = named(file.pipeline)) return p;
    error = "no pipeline named \"" + file.pipeline + "\" in " + config.file.string() +
            " (pipelines: " + names + ")";
    return nullptr;
  }
  // <stem>.test.yaml: the pipeline defined in <stem>.yaml / <stem>.yml next to it, else the
  // pipeline called <stem>.
  std::string stem = file.path.filename().string();
  for (std::string_view suffix : {".test.yaml", ".test.yml"}) {
    if (stem.ends_with(suffix)) stem.resize(stem.size() - suffix.size());
  }
  for (const auto& p : config.pipelines) {
    fs::path defined(p.where.file);
    if (defined.stem() == stem && samePath(defined.parent_path(), file.path.parent_path())) {
      return &p;
    }
  }
  if (const auto* p = named(stem)) return p;
  error = "which pipeline does this file test? No pipeline file " + stem +
          ".yaml next to it and no pipeline named \"" + stem + "\"; add `pipeline: NAME` (" +
          names + ")";
  return nullptr;
}

Outcome outcomeOf(const pipeline::Decision& d, const Message& last, int32_t partitions) {
  Outcome o;
  o.route = d.route;
  o.stage = std::string(d.stage);
  o.reason = d.reason;
  switch (d.route) {
    case pipeline::Route::Output:
      // The worker writes output records keyed by output.key and lets the partitioner place
      // them (RD_KAFKA_PARTITION_UA with murmur2_random).
      o.key = d.output_key;
      o.partition = partitionFor(d.output_key, partitions);
      o.headers = last.headers;
      break;
    case pipeline::Route::Error:
    case pipeline::Route::Audit:
      // Error and audit records keep the original key and headers (kpipe adds its own).
      o.key = last.key;
      o.headers = last.headers;
      break;
    case pipeline::Route::Drop:
      break;
  }
  return o;
}

std::vector<Mismatch> compare(const Expectation& e, const Outcome& a) {
  std::vector<Mismatch> out;
  if (e.route && *e.route != a.route) {
    out.push_back({"route", pipeline::routeName(*e.route), pipeline::routeName(a.route)});
  }
  bool written = a.route != pipeline::Route::Drop;
  if (e.key && (!written || a.key != e.key)) out.push_back({"key", show(e.key), showKey(a)});
  if (e.expect_no_key && (!written || a.key)) out.push_back({"key", "(no key)", showKey(a)});
  if (e.partition && a.partition != e.partition) {
    out.push_back({"partition", std::to_string(*e.partition),
                   a.partition ? std::to_string(*a.partition) : "(none: not an output record)"});
  }
  if (e.stage && *e.stage != a.stage) {
    out.push_back({"stage", *e.stage, a.stage.empty() ? "(none)" : a.stage});
  }
  if (e.reason && a.reason.find(*e.reason) == std::string::npos) {
    out.push_back({"reason", "contains " + quoteText(*e.reason),
                   a.reason.empty() ? "(none)" : quoteText(a.reason)});
  }
  if (e.reason_regex && !std::regex_search(a.reason, std::regex(*e.reason_regex))) {
    out.push_back({"reason", "matches /" + *e.reason_regex + "/",
                   a.reason.empty() ? "(none)" : quoteText(a.reason)});
  }
  for (const auto& [name, value] : e.headers) {
    std::optional<std::string> found;
    for (const auto& [n, v] : a.headers) {
      if (n == name && (!found || v == value)) found = v;
    }
    if (!written) {
      out.push_back({"headers." + name, quoteText(value), "(no record: dropped)"});
    } else if (found != value) {
      out.push_back({"headers." + name, quoteText(value), found ? show(found) : "(absent)"});
    }
  }
  return out;
}

}  // namespace

int32_t partitionFor(std::string_view key, int32_t partitions) {
  // The topic handle and opaques are unused by this partitioner (librdkafka 2.0.2
  // rdkafka_msg.c): it is a pure function of the key, usable without a client.
  return rd_kafka_msg_partitioner_murmur2(nullptr, key.data(), key.size(), partitions, nullptr,
                                          nullptr);
}

int FileResult::failed() const {
  return static_cast<int>(
      std::count_if(cases.begin(), cases.end(), [](const CaseResult& c) { return !c.passed(); }));
}

int Report::passed() const {
  int n = 0;
  for (const auto& f : files) n += static_cast<int>(f.cases.size()) - f.failed();
  return n;
}

int Report::failed() const {
  int n = 0;
  for (const auto& f : files) n += f.failed();
  return n;
}

int Report::errors() const {
  int n = static_cast<int>(config_errors.size());
  for (const auto& f : files) n += static_cast<int>(f.errors.size());
  return n;
}

std::vector<fs::path> discoverTestFiles(const config::Config& config) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(config.pipelines_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.starts_with(".")) continue;
    if (!name.ends_with(".test.yaml") && !name.ends_with(".test.yml")) continue;
    files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

FileResult runTestFile(const config::Config& config, const TestFile& file) {
  FileResult result;
  result.file = file.display;
  std::string error;
  const config::PipelineSpec* spec = findPipeline(config, file, error);
  if (spec == nullptr) {
    config::SourceLocation where =
        file.pipeline.empty() ? config::SourceLocation{file.display, 0, 0} : file.pipeline_where;
    result.errors.push_back({where, file.pipeline.empty() ? "" : "pipeline", error});
    return result;
  }
  result.pipeline = spec->name;

  // The same store limits as `kpipe run` (dedup/factory.h), in memory whatever the type.
  config::StoreSpec store_spec;
  if (spec->dedup && !spec->dedup->store.empty()) {
    if (auto it = config.stores.find(spec->dedup->store); it != config.stores.end()) {
      store_spec = it->second;
    }
  }
  auto built = pipeline::Router::build(*spec);
  if (auto* message = std::get_if<std::string>(&built)) {
    result.errors.push_back(
        {spec->where, "", "pipeline " + spec->name + " cannot run: " + *message});
    return result;
  }
  pipeline::Router& router = *std::get<std::unique_ptr<pipeline::Router>>(built);

  // The dedup stage as the worker runs it, against an empty memory table per case (or one
  // for the file): each record is taken as acknowledged at once, as after a delivery.
  std::optional<dedup::MemoryTable> table;
  pipeline::Decision d;
  for (const Case& c : file.cases) {
    if (!table || !file.shared_store) table.emplace(store_spec.max_entries);
    for (const Message& m : c.input) {
      router.route(m.value ? m.value->data() : nullptr, m.value ? m.value->size() : 0, d);
      if (spec->dedup && d.route == pipeline::Route::Output) {
        dedup::ReserveResult seen = table->reserve(d.id, store_spec.reservation_ttl);
        if (seen == dedup::ReserveResult::New) {
          table->confirm(d.id, store_spec.ttl);
        } else {
          router.markDuplicate(d, seen);
        }
      }
    }
    CaseResult r;
    r.name = c.name;
    r.where = c.where;
    r.actual = outcomeOf(d, c.input.back(), file.partitions);
    if (c.expect) r.mismatches = compare(*c.expect, r.actual);
    result.cases.push_back(std::move(r));
  }
  return result;
}

Report runTests(const Options& options) {
  Report report;
  report.config_file = options.config.string();
  report.recorded = options.record;
  config::LoadResult loaded = config::loadConfig(options.config);
  if (!loaded.ok()) {
    report.config_errors = std::move(loaded.errors);
    return report;
  }
  const config::Config& config = *loaded.config;
  std::vector<fs::path> files =
      options.test_files.empty() ? discoverTestFiles(config) : options.test_files;
  if (files.empty()) {
    report.config_errors.push_back(
        {config::SourceLocation{config.pipelines_dir.string(), 0, 0}, "",
         "no test files (*.test.yaml) here; name them on the command line"});
  }
  for (const fs::path& path : files) {
    // Discovered files are named relative to the working directory, as `kpipe check` names
    // pipeline files; files from the command line as given.
    std::error_code ec;
    std::string display = path.string();
    if (options.test_files.empty()) {
      fs::path relative = path.lexically_proximate(fs::current_path(ec));
      if (!ec && !relative.empty() && *relative.begin() != "..") display = relative.string();
    }
    ParseResult parsed =
        parseTestFile(path, ParseOptions{.expect_optional = options.record}, display);
    if (!parsed.ok()) {
      FileResult failed;
      failed.file = display;
      failed.errors = std::move(parsed.errors);
      report.files.push_back(std::move(failed));
      continue;
    }
    FileResult result = runTestFile(config, *parsed.file);
    if (options.record && result.errors.empty()) {
      // Written next to the file, then renamed over it: an interrupted write leaves the test
      // file as it was.
      fs::path temporary = path;
      temporary += ".recording";
      std::string text = recordedText(*parsed.file, result);
      std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
      out << text;
      out.close();
      std::error_code ec;
      if (!out) {
        ec = std::make_error_code(std::errc::io_error);
      } else {
        fs::rename(temporary, path, ec);
      }
      if (ec) {
        fs::remove(temporary, ec);
        result.errors.push_back({config::SourceLocation{parsed.file->display, 0, 0}, "",
                                 "cannot write: " + ec.message()});
      }
      // Recorded cases are what they are now: they pass by definition.
      for (CaseResult& c : result.cases) c.mismatches.clear();
    }
    report.files.push_back(std::move(result));
  }
  return report;
}

int testCommand(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err) {
  Options options;
  bool json = false;
  std::optional<fs::path> junit;
  std::vector<std::string_view> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--record") {
      options.record = true;
    } else if (args[i] == "--junit") {
      if (i + 1 >= args.size()) {
        err << "kpipe test: --junit needs a file name\n";
        return 2;
      }
      junit = std::string(args[++i]);
    } else if (args[i].starts_with("--junit=")) {
      junit = std::string(args[i].substr(8));
    } else if (args[i].starts_with("-") && args[i] != "-") {
      err << "kpipe test: unknown option " << args[i] << "\nusage: kpipe " << kTestUsage << "\n";
      return 2;
    } else {
      positional.push_back(args[i]);
    }
  }
  if (positional.empty()) {
    err << "usage: kpipe " << kTestUsage << "\n";
    return 2;
  }
  options.config = std::string(positional[0]);
  for (size_t i = 1; i < positional.size(); ++i) {
    options.test_files.emplace_back(std::string(positional[i]));
  }

  Report report = runTests(options);
  if (json) {
    writeJson(report, out);
  } else {
    for (const auto& e : report.config_errors) err << e.str() << "\n";
    for (const auto& f : report.files) {
      for (const auto& e : f.errors) err << e.str() << "\n";
    }
    writeText(report, out);
  }
  if (junit) {
    std::ofstream file(*junit, std::ios::binary | std::ios::trunc);
    writeJunit(report, file);
    file.close();
    if (!file) {
      err << "kpipe test: cannot write " << junit->string() << "\n";
      return 1;
    }
  }
  return report.ok() ? 0 : 1;
}

}  // namespace kpipe::pipetest
