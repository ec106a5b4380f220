#pragma once
// The traffic of `kpipe plan --measure`: sample messages (a JSON Lines file, or the examples of
// the pipeline's `kpipe test` cases) and the copies made of them, each with a fresh message id
// so that dedup sees new ids, and with its ordering key taken from a pool of distinct values so
// that the scheduler sees as many keys as real traffic would.
//
// A copy is the sample's bytes with only the id's (and the key's) JSON literal replaced: the
// rest of the text, its layout and its size stay as they were. A fresh value has the original's
// type and shape (fresh_values below), so that the schema accepts it as it accepted the
// original (a UUID stays a UUID of the same version).
//
// Pure functions of their input (reading the sample files aside); thread-compatible.

#include "daemon/config/spec.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace kpipe::plan {

// One input record, as a producer would write it.
struct Sample {
  std::optional<std::string> key;    // the Kafka key; nullopt: none
  std::optional<std::string> value;  // nullopt: a tombstone
  std::vector<std::pair<std::string, std::string>> headers;
  size_t bytes() const;  // key + value + header names and values
};

struct Samples {
  std::vector<Sample> messages;
  std::string source;  // for the report: "samples.jsonl", "the output cases of x.test.yaml"
};

// JSON Lines: every non-blank line is one message value (any JSON text), or KEY<TAB>VALUE (the
// value again JSON) as tools/gen_events.py writes for `kcat -K '\t'`: a line that is not JSON
// as a whole is split at its first tab. `display` names the file in errors ("FILE:LINE: ...").
std::variant<std::vector<Sample>, std::string> parseSampleLines(std::string_view text,
                                                                const std::string& display);
std::variant<Samples, std::string> readSampleFile(const std::filesystem::path& file);

// The input messages of the pipeline's `kpipe test` cases (the *.test.yaml files of the
// pipelines directory that test it, as `kpipe test` finds them): those of the cases that expect
// the output route, or of every case when none does (traffic that is mostly errors measures
// the error path). Tombstones are left out. Empty `messages`: there are no such cases.
Samples samplesFromTests(const config::Config& config, const config::PipelineSpec& pipeline);

// Fresh values (fresh_values): `original` with its trailing letters and digits replaced by the
// number `value` written in their own alphabets (a digit stays a digit, a lower-case letter a
// lower-case letter, ...; in a hex string, such as a UUID, each stays a hex digit of the same
// case), using as few of them as give at least `capacity` distinct values (all of them when
// they cannot). Separators and the remaining prefix stay. So "6f1c8f9e-...-2b5b0e4d7c11" stays
// a UUID of the same version and variant (only the last 10 hex digits change for 2^40 values),
// and "pay-0001" keeps its form (three lower-case letters, a dash, four digits).
// Distinct values below capacityOf() give distinct strings; strings of different shapes never
// meet. A string without letters or digits gets the value appended in decimal.
std::string reshape(std::string_view original, uint64_t value, uint64_t capacity);
// How many distinct values reshape() can write into `original` for `capacity` (saturating).
uint64_t capacityOf(std::string_view original, uint64_t capacity);

// Where a scalar of a JSON text is: its literal's bytes [begin, end) and its type.
struct ScalarSpan {
  enum class Type { String, Integer, Number } type = Type::String;
  size_t begin = 0;
  size_t end = 0;
  std::string text;  // a string's decoded content; a number's literal
};
// The scalar (string or number) at the JSON pointer `pointer` in `json`; nullopt when the text
// is not JSON, the pointer names nothing, or it names an object, array, boolean or null.
std::optional<ScalarSpan> findScalar(std::string_view json, const std::string& pointer);

// A JSON string literal (quoted, escaped) for `text`.
std::string jsonString(std::string_view text);

// Makes copy number n of a sample set: sample n % size, with the id literal (dedup.id) replaced
// by fresh value number `salt + n` and the ordering key literal (the pipeline's key) by value
// number n % keys.
class CopyMaker {
 public:
  struct Options {
    std::string id_pointer;   // "": the pipeline has no dedup, ids stay
    std::string key_pointer;  // the pipeline's key
    uint64_t keys = 0;        // distinct keys in the copies; 0: keys stay as in the samples
    uint64_t salt = 0;        // ids differ between runs (a shared Redis remembers them)
  };
  CopyMaker(std::vector<Sample> samples, Options options);

  // Fills `value` with the value of copy n and returns its sample (key, headers, tombstone).
  const Sample& make(uint64_t n, std::string& value) const;

  size_t size() const { return samples_.size(); }
  size_t idsRewritten() const { return ids_rewritten_; }    // samples whose id is fresh per copy
  size_t keysRewritten() const { return keys_rewritten_; }  // samples whose key is rewritten
  double averageBytes() const;                              // of the samples as they are

  // The fresh id number `value` for an original id `original` of `type` (reshape() for strings,
  // the number itself for numbers), as a JSON literal.
  static std::string freshLiteral(ScalarSpan::Type type, std::string_view original, uint64_t value,
                                  uint64_t capacity);

  // Fresh ids need this many distinct values (2^40: a run's ids and the next run's do not meet).
  static constexpr uint64_t kIdCapacity = uint64_t{1} << 40;

 private:
  struct Prepared {
    Sample sample;
    std::optional<ScalarSpan> id;
    std::optional<ScalarSpan> key;
  };
  std::vector<Prepared> samples_;
  Options options_;
  size_t ids_rewritten_ = 0;
  size_t keys_rewritten_ = 0;
};

}  // namespace kpipe::plan
