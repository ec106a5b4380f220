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

#include <cstdint>

// valijson's RapidJSON adapter reads an unsigned integer above INT64_MAX as
// static_cast<int64_t>(value), a negative number: 9223372036854775808 passed "maximum": 100,
// 18446744073709551615 was "less than minimum 0" and equal to -1 for enum and const. For the
// values kpipe validates (rapidjson::Value), such a number is a double instead, as RapidJSON's
// own GetDouble() reads it. These explicit specializations must be seen before any use of the
// adapter, which is why they are here, in the only header that includes valijson.
namespace valijson::adapters {
template <>
inline bool GenericRapidJsonValue<rapidjson::Value>::isInteger() const {
  return m_value.IsInt64();  // every Int, Uint and Uint64 up to INT64_MAX is also an Int64
}
template <>
inline bool GenericRapidJsonValue<rapidjson::Value>::getInteger(int64_t& result) const {
  if (!m_value.IsInt64()) return false;
  result = m_value.GetInt64();
  return true;
}
template <>
inline bool GenericRapidJsonValue<rapidjson::Value>::isDouble() const {
  return m_value.IsDouble() || (m_value.IsUint64() && !m_value.IsInt64());
}
template <>
inline bool GenericRapidJsonValue<rapidjson::Value>::getDouble(double& result) const {
  if (!isDouble()) return false;
  result = m_value.GetDouble();
  return true;
}
}  // namespace valijson::adapters

#include <valijson/constraint_builder.hpp>
#include <valijson/constraints/concrete_constraints.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>
