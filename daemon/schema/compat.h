#pragma once
// Growth-only schema evolution: does a new version of a JSON Schema (draft-07) still accept every
// document the old version accepted?
//
// The check works on the schemas' JSON, keyword by keyword, and is conservative: it proves
// compatibility for the common ways schemas grow (a new optional property, a type or an enum
// widened, bounds relaxed, a requirement dropped, a closed schema opened) and reports everything
// else, naming the rule. What it cannot prove (a changed anyOf/oneOf/not/if, a pattern other than
// the same one, a `$ref` it cannot follow) is reported as such, never passed silently.
//
// One deliberate exception to strictness: a property the old schema did not name, added to an
// open schema, is growth even though old data could carry a field of that name with another
// shape. That is how fields arrive; closing the schema or requiring the field is what is refused.
//
// Pure functions; thread-safe.

#include "daemon/schema/rapidjson.h"

#include <functional>
#include <string>
#include <vector>

namespace kpipe::schema {

struct Incompatibility {
  std::string pointer;      // JSON pointer into the new schema ("" = its root)
  std::string message;      // the rule, with the old and new values
  std::string str() const;  // "at /pointer: message" ("at /: ..." for the root)
};

// Another schema document a `$ref` names: its root and the base later references in it resolve
// against. A null root means it cannot be read; `error` then says why.
struct ReferencedDocument {
  const rapidjson::Value* root = nullptr;
  std::string base;
  std::string error;
};
// Resolves `uri` (a `$ref` without its fragment) against `base` (the referring document's base).
// The documents it returns must outlive the check.
using ReferenceResolver =
    std::function<ReferencedDocument(const std::string& base, const std::string& uri)>;

struct CompatOptions {
  std::string old_base;  // the old schema's base (its file), handed to resolve_old
  std::string new_base;
  // Empty: a `$ref` to another document is reported as "cannot compare". References into the
  // same document ("#/definitions/x", "#") are always followed.
  ReferenceResolver resolve_old;
  ReferenceResolver resolve_new;
};

// Every way `new_schema` rejects data that `old_schema` accepted, as far as the check can tell;
// empty when the change is growth only.
std::vector<Incompatibility> checkGrowthOnly(const rapidjson::Value& old_schema,
                                             const rapidjson::Value& new_schema,
                                             const CompatOptions& options = {});

}  // namespace kpipe::schema
