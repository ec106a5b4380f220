#include "daemon/schema/multiple_of.h"

#include "daemon/schema/valijson.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace kpipe::schema::detail {
namespace {

class MultipleOfConstraint final : public valijson::constraints::PolyConstraint {
 public:
  explicit MultipleOfConstraint(double divisor)
      : divisor_(divisor), integral_reciprocal_(std::trunc(1 / divisor) == 1 / divisor) {}

  bool validate(const valijson::adapters::Adapter& target, const std::vector<std::string>& context,
                valijson::ValidationResults* results) const override {
    if (!target.isNumber()) {
      return true;
    }
    const double value = target.getNumber();
    // Every integer is a multiple of 0.5, even one whose quotient would overflow (1e308 / 0.5).
    if (std::trunc(value) == value && integral_reciprocal_) {
      return true;
    }
    const double quotient = value / divisor_;
    // 1e300 / 0.1 overflows: not a multiple (the suite's "float division = inf").
    const bool multiple =
        std::isfinite(quotient) &&
        std::fabs(quotient - std::nearbyint(quotient)) <= 1e-9 * std::max(1.0, std::fabs(quotient));
    if (!multiple && results != nullptr) {
      results->pushError(context, std::string(kMultipleOfMismatch) + std::to_string(divisor_));
    }
    return multiple;
  }

 private:
  valijson::constraints::Constraint* cloneInto(void* memory) const override {
    return new (memory) MultipleOfConstraint(*this);
  }
  size_t sizeOf() const override { return sizeof(MultipleOfConstraint); }

  double divisor_;
  bool integral_reciprocal_;
};

class MultipleOfConstraintBuilder final : public valijson::ConstraintBuilder {
 public:
  valijson::constraints::Constraint* make(const valijson::adapters::Adapter& node) const override {
    if (!node.isNumber() || !(node.getNumber() > 0)) {
      throw std::runtime_error("\"multipleOf\" must be a number greater than 0");
    }
    return new MultipleOfConstraint(node.getNumber());
  }
};

}  // namespace

std::unique_ptr<valijson::ConstraintBuilder> makeMultipleOfConstraintBuilder() {
  return std::make_unique<MultipleOfConstraintBuilder>();
}

}  // namespace kpipe::schema::detail
