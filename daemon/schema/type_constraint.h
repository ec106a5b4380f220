#pragma once
// Internal to daemon/schema: `type` for the schemas that allow "integer" but not "number".
//
// valijson 1.0 calls 1.0 "not an integer" (RapidJSON holds it as a double); draft-07 says a
// number with a zero fractional part is an integer. prepareSchema renames such a `type` to
// kTypeKeyword; this constraint checks it. Other `type`s are left to valijson (they do not
// depend on how an integer is written).

#include <memory>
#include <optional>
#include <string_view>

namespace valijson {
class ConstraintBuilder;
}

namespace kpipe::schema::detail {

inline constexpr char kTypeKeyword[] = "$kpipe:type";

// The JSON types as bits, shared with fast_path.cpp.
enum TypeBit : unsigned {
  kNull = 1,
  kBoolean = 2,
  kObject = 4,
  kArray = 8,
  kNumber = 16,
  kInteger = 32,
  kString = 64,
};
// The bit of a type name; nullopt for a name that is not a JSON type.
std::optional<unsigned> typeBitOf(std::string_view name);

// The description valijson's own type constraint reports, so that both explain alike.
inline constexpr char kTypeMismatch[] = "Value type not permitted by 'type' constraint.";

// make() throws std::runtime_error for a `type` that is not a type name or a list of them.
std::unique_ptr<valijson::ConstraintBuilder> makeTypeConstraintBuilder();

}  // namespace kpipe::schema::detail
