#include "daemon/schema/multiple_of.h"

#include "daemon/schema/valijson.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace kpipe::schema::detail {
namespace {

// 2^64: integral divisors below it are exact as uint64.
constexpr double kTwoTo64 = 18446744073709551616.0;

class MultipleOfConstraint final : public valijson::constraints::PolyConstraint {
 public:
  explicit MultipleOfConstraint(double divisor)
      : divisor_(divisor),
        integral_(std::trunc(divisor) == divisor),
        integral_divisor_(integral_ && divisor < kTwoTo64 ? static_cast<uint64_t>(divisor) : 0),
        integral_reciprocal_(std::trunc(1 / divisor) == 1 / divisor) {}

  bool validate(const valijson::adapters::Adapter& target, const std::vector<std::string>& context,
                valijson::ValidationResults* results) const override {
    if (!target.isNumber()) {
      return true;
    }
    const bool multiple = integral_ ? integralMultiple(target) : fractionalMultiple(target);
    if (!multiple && results != nullptr) {
      results->pushError(context, std::string(kMultipleOfMismatch) + std::to_string(divisor_));
    }
    return multiple;
  }

 private:
  // Exact. An int64 is divided as an integer (its magnitude: INT64_MIN has none as an int64);
  // any other number is a double, whose remainder fmod computes exactly.
  bool integralMultiple(const valijson::adapters::Adapter& target) const {
    int64_t integer = 0;
    if (target.isInteger() && target.getInteger(integer)) {
      const uint64_t magnitude = integer < 0 ? uint64_t{0} - static_cast<uint64_t>(integer)
                                             : static_cast<uint64_t>(integer);
      return integral_divisor_ != 0 ? magnitude % integral_divisor_ == 0 : magnitude == 0;
    }
    const double value = target.getNumber();
    return std::isfinite(value) && std::fmod(value, divisor_) == 0;
  }

  bool fractionalMultiple(const valijson::adapters::Adapter& target) const {
    const double value = target.getNumber();
    // Every integer is a multiple of 0.5, even one whose quotient would overflow (1e308 / 0.5).
    if (std::trunc(value) == value && integral_reciprocal_) {
      return true;
    }
    const double quotient = value / divisor_;
    // 1e300 / 0.1 overflows: not a multiple (the suite's "float division = inf").
    return std::isfinite(quotient) && std::fabs(quotient - std::nearbyint(quotient)) <=
                                          1e-9 * std::max(1.0, std::fabs(quotient));
  }

  valijson::constraints::Constraint* cloneInto(void* memory) const override {
    return new (memory) MultipleOfConstraint(*this);
  }
  size_t sizeOf() const override { return sizeof(MultipleOfConstraint); }

  double divisor_;
  bool integral_;
  uint64_t integral_divisor_;  // 0 when the divisor is not integral or is 2^64 or more
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
