#pragma once
// The message stages of a pipeline, without Kafka: size check → decode → key → id → type →
// schema. route() says where one input value goes and why; the dedup stage (the id read here,
// checked against a store) is the worker's, as the store may answer later.
//
// Every failure is non-blocking (the message itself is bad) and comes back as a value with
// the stage and a reason a person can act on; route() never throws on input.
//
// Not thread-safe: owns a parse buffer and a schema validator reused for every message. One
// Router per pipeline worker, used on its io_context thread.

#include "daemon/config/spec.h"
#include "daemon/dedup/store.h"
#include "daemon/schema/rapidjson.h"
#include "daemon/schema/validator.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kpipe::pipeline {

enum class Route { Output, Error, Audit, Drop };
const char* routeName(Route route);

// Error stages, as they appear in the kpipe.error.stage header.
namespace stage {
inline constexpr std::string_view kSize = "size";
inline constexpr std::string_view kDecode = "decode";
inline constexpr std::string_view kKey = "key";
inline constexpr std::string_view kId = "id";
inline constexpr std::string_view kType = "type";
inline constexpr std::string_view kSchema = "schema";
inline constexpr std::string_view kDedup = "dedup";
// After routing, where the effect failed:
inline constexpr std::string_view kOutput = "output";  // the output topic
inline constexpr std::string_view kSink = "sink";      // the output sink (HTTP)
inline constexpr std::string_view kErrorTopic = "error_topic";
inline constexpr std::string_view kAuditTopic = "audit_topic";
}  // namespace stage

// Error classes, as they appear in the kpipe.error.class header and kpipe_errors_total.
namespace error_class {
// The message itself is bad (or the sink refused it for good): error topic, move on.
inline constexpr std::string_view kNonBlocking = "non_blocking";
// Something outside is down: retried, never skipped (counted per failed attempt).
inline constexpr std::string_view kBlocking = "blocking";
// A blocking failure that outlasted errors.max_attempts: error topic.
inline constexpr std::string_view kExhausted = "exhausted";
}  // namespace error_class

// The decode stage and its parts, exposed for tests/bench/decode_bench.cpp.
namespace detail {
// Events are shallow; a document nested deeper than this is refused before it is parsed, so
// that no later stage (valijson's enum/const/items checks recurse) walks a 100,000-deep value.
inline constexpr int kMaxNestingDepth = 128;
// True when arrays/objects in `text` nest deeper than `limit` (strings skipped, not validated).
bool nestsDeeperThan(const char* text, size_t size, int limit);
// The JSON pointer of the first member name written twice in one object, or nullopt.
std::optional<std::string> duplicateMember(const rapidjson::Value& value);

// The decode stage's parser: one document reused for every message, its values and its parse
// stack in pooled memory recycled wholesale per parse, so that parsing a typical event calls no
// malloc (the default stack allocator would, once per message, as RapidJSON frees the stack
// after every parse). Iterative (no recursion on deep input) and strict UTF-8. The router's;
// the benchmarks measure the parse with it.
class PooledParser {
 public:
  using Document = rapidjson::GenericDocument<rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>,
                                              rapidjson::MemoryPoolAllocator<>>;
  PooledParser();
  PooledParser(const PooledParser&) = delete;
  PooledParser& operator=(const PooledParser&) = delete;
  // Parses `text`; the previous document is dead. Check HasParseError() on the result.
  const Document& parse(const char* text, size_t size);
  const Document& document() const { return document_; }

 private:
  std::vector<char> buffer_;
  std::vector<char> stack_buffer_;
  rapidjson::MemoryPoolAllocator<> allocator_;
  rapidjson::MemoryPoolAllocator<> stack_allocator_;
  Document document_;
};

// Why a value did not decode: the stage (size or decode) and a reason for the error record.
struct DecodeFailure {
  std::string_view stage;
  std::string reason;
};

// The decode stage: size, byte order mark, NUL and nesting checks, the parse, a top-level
// object, no member written twice. Returns the document (owned by `parser`, valid until its
// next parse), or null with `failure` filled. `value` is null for a tombstone.
const PooledParser::Document* decode(PooledParser& parser, const char* value, size_t size,
                                     size_t max_bytes, DecodeFailure& failure);
}  // namespace detail

struct Decision {
  Route route = Route::Output;
  std::string_view stage;                                    // for Error and Audit
  std::string reason;                                        // for Error and Audit
  std::string_view error_class = error_class::kNonBlocking;  // for Error
  std::string output_key;                                    // for Output
  // Hash of the ordering key (pipeline `key`), when it was read; the scheduler keeps messages
  // with equal hashes in order. A message without one (it failed before the key stage) is an
  // error record that need not wait for anything.
  uint64_t key_hash = 0;
  bool has_key = false;
  std::string id;         // the message id when dedup is on and it was read
  bool reserved = false;  // a dedup reservation is held: confirm after the ack, or release
  void clear();
};

class Router {
 public:
  // Compiles the pipeline's schemas. Errors name the schema file.
  static std::variant<std::unique_ptr<Router>, std::string> build(const config::PipelineSpec& spec);

  // `value` is null for a tombstone. Fills `decision` (cleared first; its buffers are reused).
  void route(const char* value, size_t size, Decision& decision);

  // The dedup store has seen `decision.id` (Done, or InProgress for good): audit or drop it,
  // per dedup.on_duplicate.
  void markDuplicate(Decision& decision, dedup::ReserveResult seen) const;

  const config::PipelineSpec& spec() const { return spec_; }

 private:
  struct Pointer {
    std::string text;
    rapidjson::Pointer pointer;
  };
  explicit Router(const config::PipelineSpec& spec);
  void fail(Decision& d, std::string_view stage, std::string reason);
  // Reads a scalar at `p` as key/id text. Returns the reason when it cannot.
  std::optional<std::string> readScalar(const Pointer& p, std::string_view what, std::string& out,
                                        bool allow_number) const;

  config::PipelineSpec spec_;
  Pointer key_;
  std::optional<Pointer> output_key_;  // set only when it differs from the pipeline key
  std::optional<Pointer> id_;
  std::optional<Pointer> type_field_;
  schema::SchemaPtr single_schema_;
  std::vector<std::pair<std::string, schema::SchemaPtr>> type_schemas_;

  detail::PooledParser parser_;  // reused per message
  schema::Validator validator_;
  std::vector<schema::Failure> failures_;
};

}  // namespace kpipe::pipeline
