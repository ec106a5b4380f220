#pragma once
// Internal to daemon/schema: a yes/no validator for the keywords most event schemas use, run
// before valijson on every message.
//
// valijson 1.0 copies its context path (a vector of strings) into every subschema it visits
// and copies every string it checks out of the document: about 1.8 µs for a small event,
// most of a pipeline's CPU per message. This walks a compiled tree of plain structs over the
// RapidJSON value instead: no allocation, no copies. It answers only "valid"; when it says
// "invalid" (or cannot be built for a schema), valijson decides and explains as before, so an
// answer of "invalid" here is never final and only the "valid" answers must be exact.
//
// Built for schemas (after resolve.h and prepare.h) whose keywords are all among: true/false
// schemas, type (valijson's and kpipe's integer-aware one), enum and const of strings,
// booleans and null, required, properties, additionalProperties, min/maxProperties,
// min/maxLength, minimum, maximum, exclusiveMinimum, exclusiveMaximum, pattern (pattern.h),
// format (format.h), items (one schema), min/maxItems, allOf, anyOf, oneOf, not, if/then/else,
// and annotations (title, description, ...). Any other keyword ($ref, patternProperties,
// multipleOf, numbers in enum, ...) and the schema has no fast path. Each keyword means what
// valijson (with kpipe's custom constraints) makes it mean: the official suite and
// tests/unit/schema/fast_path_test.cpp compare both.

#include "daemon/schema/rapidjson.h"

#include <memory>

namespace kpipe::schema::detail {

class FastPath {
 public:
  ~FastPath();
  // Null when the schema uses a keyword the fast path does not handle.
  static std::unique_ptr<FastPath> build(const rapidjson::Value& schema);

  // True only when `document` is valid.
  bool valid(const rapidjson::Value& document) const;

 private:
  struct Node;
  struct Tree;
  FastPath();
  std::unique_ptr<Tree> tree_;
};

}  // namespace kpipe::schema::detail
