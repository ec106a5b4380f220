// libFuzzer target: the record headers kpipe writes on error records (pipeline/record_headers.h)
// as `kpipe replay` reads them back (daemon/replay): readErrorHeaders, decide with a filter
// (--reason, --since, --until), replayHeaders, formatReport; and parseTime, parseArgs.
//
// Input: one selector byte, then NUL-separated parts: REASON_REGEX, SINCE, UNTIL, then one
// header per part, "name=value" or "name" (a null value). The selector picks the --reason regex
// (bits 0-2: none, one of a few an operator would write, or REASON_REGEX), whether SINCE and
// UNTIL are applied (bits 3, 4), and whether the parts also go through parseArgs as command-line
// arguments (bit 5). A fuzzed regex is kept short and without `{n}` repetitions: --reason is
// the operator's own, and `(a{999}){99}` is slow by design, not a bug (see README.md).
//
// Invariants: nothing throws; a record is replayed only if it has a non-empty stage and a
// reason and no value_omitted header; replayHeaders keeps every other header in order and ends
// with kpipe.replay.origin; the report mentions what was counted.

#include "daemon/pipeline/record_headers.h"
#include "daemon/replay/replay.h"

#include "tests/fuzz/fuzz_util.h"

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

namespace {

using namespace kpipe;

constexpr replay::Millis kNow = 1795687200000;  // 2026-11-26T10:00:00Z
constexpr size_t kMaxFuzzedRegexBytes = 24;

constexpr const char* kReasons[] = {
    "schema", "^at /ts: ", "is not one of|missing required", "(?:uuid|date-time)$", "[\\s\\S]*", "",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::vector<std::string_view> parts = fuzz::splitAtNul(input, SIZE_MAX);
  auto part = [&](size_t i) { return i < parts.size() ? parts[i] : std::string_view(); };

  replay::Filter filter;
  const unsigned choice = selector & 7u;
  if (choice >= 1 && choice <= std::size(kReasons)) {
    if (filter.setReason(kReasons[choice - 1])) fuzz::fail("a built-in --reason is refused");
  } else if (choice == 7) {
    const std::string_view regex = part(0);
    if (regex.size() <= kMaxFuzzedRegexBytes && regex.find('{') == std::string_view::npos) {
      if (auto error = filter.setReason(std::string(regex)); error && error->empty()) {
        fuzz::fail("an empty --reason error");
      }
    }
  }
  for (const auto& [bit, text, bound] :
       {std::tuple{0x08, part(1), &filter.since}, std::tuple{0x10, part(2), &filter.until}}) {
    auto parsed = replay::parseTime(text, kNow);
    if (auto* error = std::get_if<std::string>(&parsed)) {
      if (error->empty()) fuzz::fail("an empty time error");
    } else if (selector & bit) {
      *bound = std::get<replay::Millis>(parsed);
    }
  }

  replay::Headers headers;
  for (size_t i = 3; i < parts.size(); ++i) {
    const std::string_view h = parts[i];
    const size_t equals = h.find('=');
    if (equals == std::string_view::npos) {
      headers.push_back({std::string(h), std::nullopt});
    } else {
      headers.push_back({std::string(h.substr(0, equals)), std::string(h.substr(equals + 1))});
    }
  }

  const replay::ErrorRecordHeaders error = replay::readErrorHeaders(headers);
  const std::optional<replay::SkipReason> skip = replay::decide(error, filter);
  replay::Report report;
  report.from = "events.errors";
  report.to = "events";
  report.partitions = 1;
  report.read = 1;
  if (skip) {
    if (std::string_view(replay::skipReasonText(*skip)) == "?") fuzz::fail("an unnamed skip");
    ++report.skipped[*skip];
  } else {
    if (!error.stage || error.stage->empty() || !error.reason || error.value_omitted) {
      fuzz::fail("replays a record that is not a complete error record");
    }
    ++report.replayed[*error.stage];
    const replay::Headers out = replay::replayHeaders(headers, "events.errors:3:42");
    if (out.empty() || out.back().name != pipeline::header::kReplayOrigin ||
        out.back().value != "events.errors:3:42") {
      fuzz::fail("replayed headers do not end with kpipe.replay.origin");
    }
    size_t kept = 0;
    for (const replay::Header& h : headers) {
      if (std::string_view(h.name).starts_with(pipeline::header::kPrefix)) continue;
      if (kept + 1 >= out.size() || !(out[kept] == h)) fuzz::fail("a header lost or reordered");
      ++kept;
    }
    if (kept + 1 != out.size()) fuzz::fail("a kpipe.* header is replayed");
  }
  const std::string text = replay::formatReport(report);
  if (text.find("read 1 record from 1 partition") == std::string::npos) {
    fuzz::fail("report without its counts: " + text);
  }

  if (selector & 0x20) {
    std::vector<std::string_view> args(parts.begin(), parts.end());
    bool slow_regex = false;
    for (std::string_view arg : args) slow_regex |= arg.find('{') != std::string_view::npos;
    if (!slow_regex) {
      auto parsed = replay::parseArgs(args, kNow);
      if (auto* usage = std::get_if<std::string>(&parsed); usage && usage->empty()) {
        fuzz::fail("an empty usage error");
      }
    }
  }
  return 0;
}
