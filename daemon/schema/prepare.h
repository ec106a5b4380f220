#pragma once
// Internal to daemon/schema: the pass over a schema's JSON before valijson parses it.
//
// It works around what would otherwise crash or hang the daemon inside valijson 1.0:
// - renames `pattern` to the safe custom keyword (pattern.h), `format` to kpipe's (format.h), and
//   a `type` that allows "integer" but not "number" to kpipe's (type_constraint.h), a
//   `multipleOf` to kpipe's (multiple_of.h);
// - writes `"maxItems": 2.0` (and the other counts) as the integer valijson insists on;
// - refuses `$ref` cycles that never descend into the document (`{"$ref": "#"}`, a -> b -> a,
//   `{"allOf": [{"$ref": "#"}]}`): valijson recurses on them without end, at compile time for
//   chains of pure references, at validation time for the others;
// - turns a `$ref` at the root into `allOf: [{$ref}]`: valijson resolves a root reference with
//   its own code path, which treats a relative file name as a pointer into the same document and
//   recurses forever. Other keywords next to a root `$ref` (ignored by draft-07) then apply, as in
//   later drafts.

#include "daemon/schema/rapidjson.h"

namespace kpipe::schema::detail {

struct PrepareResult {
  bool uses_pattern_properties = false;
};

// `document` is the schema file itself, after resolveReferences (resolve.h) embedded what its
// `$ref`s name. Throws std::runtime_error with a reason for schemas that must be refused.
PrepareResult prepareSchema(rapidjson::Document& document);

}  // namespace kpipe::schema::detail
