#pragma once
// Internal to daemon/schema: `$id` and `$ref` (draft-07), resolved by kpipe before valijson.
//
// valijson 1.0 reads only draft-4 `id`, joins relative URIs by string concatenation, indexes no
// embedded ids and keys its cache of subschemas by JSON pointer alone, so two documents with the
// same pointer collide (see ../shared/notes/valijson-1.0.md). So kpipe resolves every reference
// itself, per RFC 3986, and hands valijson one self-contained document:
// - every `$id` (absolute, relative, embedded, `#name` anchors) is indexed against its base URI;
//   a `$id` next to a `$ref` is ignored, as draft-07 says;
// - each other document a `$ref` needs is loaded once through a DocumentLoader (files next to
//   the schema, local mirrors; never the network) and embedded under kDocumentsKeyword;
// - every `$ref` is rewritten to a JSON pointer into that one document ("#/...").
// The result is what valijson compiles and what explanations quote from.

#include "daemon/schema/rapidjson.h"

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace kpipe::schema::detail {

// Where the other documents go, in the root of the main document.
inline constexpr char kDocumentsKeyword[] = "$kpipe:documents";

// Returns the document at an absolute URI (no fragment), or nullptr after setting `why` to the
// reason, phrased to follow `$ref to "..."` (" cannot be resolved: ..." or ": path: error").
using DocumentLoader =
    std::function<std::unique_ptr<rapidjson::Document>(const std::string& uri, std::string& why)>;

// Rewrites `document` (the schema whose URI is `base_uri`) as described above. Throws
// std::runtime_error naming the `$ref` that cannot be resolved, or the loader's reason.
void resolveReferences(rapidjson::Document& document, const std::string& base_uri,
                       const DocumentLoader& load);

// Appends "/" and `token` escaped as a JSON pointer token (RFC 6901: "~" → "~0", "/" → "~1").
void appendPointerToken(std::string& pointer, std::string_view token);

// RFC 3986 section 5.2: `reference` resolved against the absolute URI `base`. Exposed for tests.
std::string resolveUri(std::string_view base, std::string_view reference);

}  // namespace kpipe::schema::detail
