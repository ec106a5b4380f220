#pragma once
// Internal to daemon/schema: the only way kpipe includes valijson.
//
// RapidJSON must come first through daemon/schema/rapidjson.h, which defines our cheap throwing
// RAPIDJSON_ASSERT. valijson's RapidJSON adapter, seeing it defined, emits `#warning
// "RAPIDJSON_ASSERT already defined"` (GCC 12 cannot silence #warning with a pragma), and
// otherwise installs its own, ~4x slower one. So the macro is hidden while the adapter is read
// and restored right after: RapidJSON itself was already parsed with ours, and nothing after this
// header sees valijson's.

#include "daemon/schema/rapidjson.h"

#pragma push_macro("RAPIDJSON_ASSERT")
#undef RAPIDJSON_ASSERT
#include <valijson/adapters/rapidjson_adapter.hpp>
#undef RAPIDJSON_ASSERT
#pragma pop_macro("RAPIDJSON_ASSERT")

#include <valijson/constraint_builder.hpp>
#include <valijson/constraints/concrete_constraints.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>
