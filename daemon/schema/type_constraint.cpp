#include "daemon/schema/type_constraint.h"

#include "daemon/schema/valijson.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kpipe::schema::detail {
namespace {

unsigned typeBit(std::string_view name) {
  if (auto bit = typeBitOf(name)) return *bit;
  throw std::runtime_error("\"type\" names an unknown type \"" + std::string(name) + "\"");
}

class TypeConstraint final : public valijson::constraints::PolyConstraint {
 public:
  explicit TypeConstraint(unsigned allowed) : allowed_(allowed) {}

  bool validate(const valijson::adapters::Adapter& target, const std::vector<std::string>& context,
                valijson::ValidationResults* results) const override {
    if ((allowed_ & kindOf(target)) != 0) {
      return true;
    }
    if (results != nullptr) {
      results->pushError(context, kTypeMismatch);
    }
    return false;
  }

 private:
  static unsigned kindOf(const valijson::adapters::Adapter& target) {
    if (target.isString()) return kString;
    if (target.isInteger()) return kInteger | kNumber;
    if (target.isDouble()) {
      const double value = target.getDouble();
      return std::isfinite(value) && std::trunc(value) == value ? kInteger | kNumber : kNumber;
    }
    if (target.isObject()) return kObject;
    if (target.isArray()) return kArray;
    if (target.isBool()) return kBoolean;
    if (target.isNull()) return kNull;
    return 0;
  }

  valijson::constraints::Constraint* cloneInto(void* memory) const override {
    return new (memory) TypeConstraint(*this);
  }
  size_t sizeOf() const override { return sizeof(TypeConstraint); }

  unsigned allowed_;
};

class TypeConstraintBuilder final : public valijson::ConstraintBuilder {
 public:
  valijson::constraints::Constraint* make(const valijson::adapters::Adapter& node) const override {
    unsigned allowed = 0;
    std::string name;
    if (node.isString() && node.getString(name)) {
      allowed = typeBit(name);
    } else if (node.isArray()) {
      bool names_only = true;
      node.applyToArray([&](const valijson::adapters::Adapter& item) {
        names_only = item.isString() && item.getString(name);
        if (names_only) allowed |= typeBit(name);
        return names_only;
      });
      if (!names_only) {
        throw std::runtime_error("\"type\" must be a type name or a list of type names");
      }
    } else {
      throw std::runtime_error("\"type\" must be a type name or a list of type names");
    }
    return new TypeConstraint(allowed);
  }
};

}  // namespace

std::optional<unsigned> typeBitOf(std::string_view name) {
  if (name == "null") return kNull;
  if (name == "boolean") return kBoolean;
  if (name == "object") return kObject;
  if (name == "array") return kArray;
  if (name == "number") return kNumber;
  if (name == "integer") return kInteger;
  if (name == "string") return kString;
  return std::nullopt;
}

std::unique_ptr<valijson::ConstraintBuilder> makeTypeConstraintBuilder() {
  return std::make_unique<TypeConstraintBuilder>();
}

}  // namespace kpipe::schema::detail
