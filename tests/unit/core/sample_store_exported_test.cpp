// Per-family export flag: a series reaches snapshot() (and so /metrics) iff the write's
// `exported` argument and its family's FamilyInfo::exported are both true; unexported
// series stay readable through history().
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "agent/core/sample_store.h"

namespace dbpulse {
namespace {

class StepClock final : public Clock {
 public:
  WallTime now() const override { return WallTime(std::chrono::milliseconds(now_ms_)); }
  int64_t nowMs() const { return now_ms_; }

 private:
  int64_t now_ms_ = 1'700'000'000'000;
};

constexpr std::chrono::seconds kStaleness(60);

TEST(SampleStoreExportedTest, DescribeDefaultsToExported) {
  SampleBatch b;
  b.describe("a", MetricType::kGauge, "help");
  ASSERT_EQ(b.families().count("a"), 1u);
  EXPECT_TRUE(b.families().at("a").exported);
  b.describe("b", MetricType::kUntyped, "help", false);
  EXPECT_FALSE(b.families().at("b").exported);
}

TEST(SampleStoreExportedTest, FirstDescriptionOfAFamilyWinsIncludingItsFlag) {
  SampleBatch b;
  b.describe("a", MetricType::kGauge, "help", false);
  b.describe("a", MetricType::kGauge, "help", true);
  EXPECT_FALSE(b.families().at("a").exported);
}

struct ExportCase {
  bool write_exported;
  bool family_exported;
  bool described;  // false: the sample's family is never described
  bool expect_in_snapshot;
};

class SampleStoreExportMatrixTest : public ::testing::TestWithParam<ExportCase> {};

TEST_P(SampleStoreExportMatrixTest, SeriesIsExportedIffWriteAndFamilyAllowIt) {
  const ExportCase c = GetParam();
  StepClock clock;
  SampleStore store(clock);
  SampleBatch b;
  if (c.described) b.describe("m", MetricType::kCounter, "help", c.family_exported);
  b.add("m", Labels{{"k", "v"}}, 7);
  store.write("src", b, kStaleness, c.write_exported);

  auto snap = store.snapshot();
  EXPECT_EQ(snap->family("m") != nullptr, c.expect_in_snapshot);
  // Exported or not, the series is stored for rules.
  auto points = store.history("m", Labels{{"k", "v"}}, 0);
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].value, 7);
  EXPECT_EQ(store.seriesCount(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    AllCombinations, SampleStoreExportMatrixTest,
    ::testing::Values(ExportCase{true, true, true, true}, ExportCase{true, false, true, false},
                      ExportCase{false, true, true, false}, ExportCase{false, false, true, false},
                      ExportCase{true, true, false, true}, ExportCase{false, true, false, false}));

TEST(SampleStoreExportedTest, FlagIsPerFamilyWithinOneBatch) {
  StepClock clock;
  SampleStore store(clock);
  SampleBatch b;
  b.gauge("own_up", "ours", {}, 1);
  b.describe("theirs_bucket", MetricType::kUntyped, "theirs", false);
  b.add("theirs_bucket", Labels{{"le", "0.1"}}, 3);
  b.add("theirs_bucket", Labels{{"le", "+Inf"}}, 5);
  store.write("companion", b, kStaleness);

  auto snap = store.snapshot();
  EXPECT_NE(snap->family("own_up"), nullptr);
  EXPECT_EQ(snap->family("theirs_bucket"), nullptr);
  EXPECT_EQ(snap->seriesCount(), 1u);
  EXPECT_EQ(store.seriesCount(), 3u);
  EXPECT_EQ(store.history("theirs_bucket", Labels{{"le", "+Inf"}}, 0).at(0).value, 5);
}

TEST(SampleStoreExportedTest, ALaterWriteCanChangeWhetherASeriesIsExported) {
  StepClock clock;
  SampleStore store(clock);
  SampleBatch hidden;
  hidden.describe("m", MetricType::kGauge, "help", false);
  hidden.add("m", {}, 1);
  store.write("src", hidden, kStaleness);
  EXPECT_EQ(store.snapshot()->family("m"), nullptr);

  SampleBatch shown;
  shown.gauge("m", "help", {}, 2);
  store.write("src", shown, kStaleness);
  const SnapshotFamily* fam = store.snapshot()->family("m");
  ASSERT_NE(fam, nullptr);
  ASSERT_EQ(fam->series.size(), 1u);
  EXPECT_EQ(fam->series[0].value, 2);
}

}  // namespace
}  // namespace dbpulse
