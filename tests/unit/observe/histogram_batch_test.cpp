#include "daemon/observe/metrics.h"

#include <gtest/gtest.h>

#include <vector>

namespace kpipe::observe {
namespace {

// The batch must end where Observe, value by value, would have: same buckets (a value on a
// boundary goes into that boundary's bucket), same sum, same count.
TEST(HistogramBatchTest, AddsWhatObserveWouldHaveAdded) {
  const prometheus::Histogram::BucketBoundaries boundaries = {0.001, 0.01, 0.1, 1};
  prometheus::Histogram one_by_one(boundaries);
  prometheus::Histogram batched(boundaries);
  HistogramBatch batch(batched, boundaries);
  const std::vector<double> values = {0, 0.0005, 0.001, 0.002, 0.01, 0.05, 0.1, 0.5, 1, 7, 1e9};
  for (double value : values) {
    one_by_one.Observe(value);
    batch.observe(value);
  }
  EXPECT_EQ(batched.Collect().histogram.sample_count, 0u) << "nothing is added before flush()";
  batch.flush();
  const auto want = one_by_one.Collect().histogram;
  const auto got = batched.Collect().histogram;
  EXPECT_EQ(got.sample_count, want.sample_count);
  EXPECT_DOUBLE_EQ(got.sample_sum, want.sample_sum);
  ASSERT_EQ(got.bucket.size(), want.bucket.size());
  for (size_t i = 0; i < want.bucket.size(); ++i) {
    EXPECT_EQ(got.bucket[i].cumulative_count, want.bucket[i].cumulative_count) << "bucket " << i;
  }
}

TEST(HistogramBatchTest, AFlushAddsOnlyWhatCameSinceTheLastOne) {
  const prometheus::Histogram::BucketBoundaries boundaries = {1, 2};
  prometheus::Histogram histogram(boundaries);
  HistogramBatch batch(histogram, boundaries);
  batch.observe(0.5);
  batch.flush();
  batch.flush();  // nothing new: adds nothing
  batch.observe(1.5);
  batch.flush();
  const auto got = histogram.Collect().histogram;
  EXPECT_EQ(got.sample_count, 2u);
  EXPECT_DOUBLE_EQ(got.sample_sum, 2.0);
  EXPECT_EQ(got.bucket[0].cumulative_count, 1u);
  EXPECT_EQ(got.bucket[1].cumulative_count, 2u);
}

}  // namespace
}  // namespace kpipe::observe
