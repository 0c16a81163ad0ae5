#include "agent/core/sample_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/fakes/fake_clock.h"

namespace dbpulse {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

using fakes::FakeClock;

SampleBatch gaugeBatch(const std::string& name, Labels labels, double value) {
  SampleBatch b;
  b.gauge(name, "help of " + name, std::move(labels), value);
  return b;
}

// The value of series name{labels} in the snapshot, or nullptr.
const SnapshotSeries* findSeries(const Snapshot& snap, const std::string& name,
                                 const Labels& labels) {
  const SnapshotFamily* fam = snap.family(name);
  if (fam == nullptr) return nullptr;
  for (const auto& s : fam->series) {
    if (s.labels == labels) return &s;
  }
  return nullptr;
}

std::vector<double> values(const std::vector<Point>& points) {
  std::vector<double> out;
  for (const auto& p : points) out.push_back(p.value);
  return out;
}

TEST(SampleStoreTest, LatestValueWins) {
  FakeClock clock;
  SampleStore store(clock);
  store.write("c", gaugeBatch("g", {{"a", "1"}}, 1.0), seconds(60));
  clock.advance(seconds(1));
  store.write("c", gaugeBatch("g", {{"a", "1"}}, 7.5), seconds(60));

  const auto snap = store.snapshot();
  ASSERT_EQ(snap->seriesCount(), 1u);
  const SnapshotSeries* s = findSeries(*snap, "g", {{"a", "1"}});
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->value, 7.5);
  EXPECT_EQ(s->t_ms, clock.wallMillis());
  EXPECT_EQ(store.seriesCount(), 1u);
}

TEST(SampleStoreTest, FamiliesAreSortedAndKeepTypeAndHelp) {
  FakeClock clock;
  SampleStore store(clock);
  SampleBatch b;
  b.counter("zeta_total", "Zeta things.", {}, 3);
  b.gauge("alpha", "Alpha level.", {{"x", "2"}}, 1);
  b.gauge("alpha", "ignored: first description wins", {{"x", "1"}}, 2);
  b.add("mid_untyped", {}, 5);  // never described
  store.write("c", b, seconds(60));

  const auto snap = store.snapshot();
  ASSERT_EQ(snap->families.size(), 3u);
  EXPECT_EQ(snap->families[0].name, "alpha");
  EXPECT_EQ(snap->families[1].name, "mid_untyped");
  EXPECT_EQ(snap->families[2].name, "zeta_total");

  const SnapshotFamily& alpha = snap->families[0];
  EXPECT_EQ(alpha.type, MetricType::kGauge);
  EXPECT_EQ(alpha.help, "Alpha level.");
  ASSERT_EQ(alpha.series.size(), 2u);
  EXPECT_EQ(alpha.series[0].labels.get("x"), "1");  // series sorted by labels
  EXPECT_EQ(alpha.series[1].labels.get("x"), "2");

  EXPECT_EQ(snap->families[1].type, MetricType::kUntyped);
  EXPECT_EQ(snap->families[1].help, "");
  EXPECT_EQ(snap->families[2].type, MetricType::kCounter);
  EXPECT_EQ(snap->families[2].help, "Zeta things.");

  ASSERT_NE(snap->family("zeta_total"), nullptr);
  EXPECT_EQ(snap->family("zeta_total")->series.at(0).value, 3);
  EXPECT_EQ(snap->family("absent"), nullptr);
}

TEST(SampleStoreTest, SeriesExpireAfterTheirStaleness) {
  FakeClock clock;
  SampleStore store(clock);
  store.write("c", gaugeBatch("short", {}, 1), seconds(10));
  store.write("c", gaugeBatch("long", {}, 2), seconds(30));

  clock.advance(milliseconds(9'999));
  auto snap = store.snapshot();
  EXPECT_NE(snap->family("short"), nullptr);
  EXPECT_NE(snap->family("long"), nullptr);

  clock.advance(milliseconds(1));  // exactly the staleness
  snap = store.snapshot();
  EXPECT_EQ(snap->family("short"), nullptr);
  EXPECT_NE(snap->family("long"), nullptr);
  EXPECT_TRUE(store.history("short", {}, 0).empty()) << "history of an expired series is freed";
  EXPECT_EQ(store.seriesCount(), 1u);

  clock.advance(seconds(20));
  snap = store.snapshot();
  EXPECT_EQ(snap->family("long"), nullptr);
  EXPECT_EQ(snap->seriesCount(), 0u);
  EXPECT_EQ(store.seriesCount(), 0u);
}

TEST(SampleStoreTest, FreshWriteResetsExpiry) {
  FakeClock clock;
  SampleStore store(clock);
  store.write("c", gaugeBatch("g", {}, 1), seconds(10));
  clock.advance(seconds(8));
  store.write("c", gaugeBatch("g", {}, 2), seconds(10));  // now expires at t=18s
  clock.advance(seconds(4));                              // t=12s: past the first expiry
  auto snap = store.snapshot();
  const SnapshotSeries* s = findSeries(*snap, "g", {});
  ASSERT_NE(s, nullptr) << "a rewritten series must not expire at its old deadline";
  EXPECT_EQ(s->value, 2);

  clock.advance(seconds(6));  // t=18s
  EXPECT_EQ(store.snapshot()->family("g"), nullptr);
}

TEST(SampleStoreTest, SnapshotIsSharedUntilSomethingChanges) {
  FakeClock clock;
  SampleStore store(clock);
  store.write("c", gaugeBatch("g", {}, 1), seconds(60));
  const auto first = store.snapshot();
  clock.advance(seconds(1));
  const auto again = store.snapshot();
  EXPECT_EQ(first.get(), again.get()) << "no write in between: the same snapshot object";

  store.write("c", gaugeBatch("g", {}, 2), seconds(60));
  const auto after_write = store.snapshot();
  EXPECT_NE(after_write.get(), first.get());
  EXPECT_GT(after_write->version, first->version);
  EXPECT_EQ(findSeries(*after_write, "g", {})->value, 2);
  // The old snapshot is immutable: readers holding it still see the old value.
  EXPECT_EQ(findSeries(*first, "g", {})->value, 1);

  clock.advance(seconds(60));  // expiry changes the content, so a new snapshot too
  const auto after_expiry = store.snapshot();
  EXPECT_NE(after_expiry.get(), after_write.get());
  EXPECT_EQ(after_expiry->seriesCount(), 0u);
}

TEST(SampleStoreTest, HistoryKeepsTheLastPointsInOrder) {
  FakeClock clock;
  SampleStore store(clock, SampleStoreOptions{.history_points = 4});
  const Labels labels{{"db", "chat"}};
  std::vector<int64_t> times;
  for (int i = 1; i <= 7; ++i) {
    times.push_back(clock.wallMillis());
    store.write("c", gaugeBatch("g", labels, i), seconds(600));
    clock.advance(seconds(1));
  }
  const auto all = store.history("g", labels, 0);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(values(all), (std::vector<double>{4, 5, 6, 7}));
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].t_ms, times[3 + i]);

  // since_ms is inclusive.
  EXPECT_EQ(values(store.history("g", labels, times[5])), (std::vector<double>{6, 7}));
  EXPECT_EQ(values(store.history("g", labels, times[5] + 1)), (std::vector<double>{7}));
  EXPECT_TRUE(store.history("g", labels, clock.wallMillis()).empty());
  EXPECT_TRUE(store.history("g", {{"db", "other"}}, 0).empty());
  EXPECT_TRUE(store.history("nope", labels, 0).empty());
}

TEST(SampleStoreTest, HistoryBeforeTheRingIsFull) {
  FakeClock clock;
  SampleStore store(clock, SampleStoreOptions{.history_points = 10});
  for (int i = 1; i <= 3; ++i) {
    store.write("c", gaugeBatch("g", {}, i * 10), seconds(600));
    clock.advance(seconds(1));
  }
  EXPECT_EQ(values(store.history("g", {}, 0)), (std::vector<double>{10, 20, 30}));
}

TEST(SampleStoreTest, UnexportedSeriesHaveHistoryButStayOutOfSnapshots) {
  FakeClock clock;
  SampleStore store(clock);
  store.write("rules", gaugeBatch("internal", {}, 42), seconds(60), /*exported=*/false);
  store.write("c", gaugeBatch("public", {}, 1), seconds(60));

  const auto snap = store.snapshot();
  EXPECT_EQ(snap->family("internal"), nullptr);
  EXPECT_NE(snap->family("public"), nullptr);
  EXPECT_EQ(snap->seriesCount(), 1u);

  const auto h = store.history("internal", {}, 0);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].value, 42);
  EXPECT_EQ(store.seriesCount(), 2u);
}

TEST(SampleStoreTest, DropSourceRemovesOnlyThatSourcesSeries) {
  FakeClock clock;
  SampleStore store(clock);
  SampleBatch a;
  a.gauge("shared", "h", {{"from", "a"}}, 1);
  a.gauge("only_a", "h", {}, 1);
  store.write("a", a, seconds(60));
  store.write("b", gaugeBatch("shared", {{"from", "b"}}, 2), seconds(60));
  const auto before = store.snapshot();

  store.dropSource("a");
  const auto snap = store.snapshot();
  EXPECT_NE(snap.get(), before.get());
  EXPECT_EQ(snap->family("only_a"), nullptr);
  const SnapshotFamily* shared = snap->family("shared");
  ASSERT_NE(shared, nullptr);
  ASSERT_EQ(shared->series.size(), 1u);
  EXPECT_EQ(shared->series[0].labels.get("from"), "b");
  EXPECT_TRUE(store.history("only_a", {}, 0).empty());
  EXPECT_EQ(store.seriesCount(), 1u);

  store.dropSource("unknown");
  EXPECT_EQ(store.seriesCount(), 1u);
}

TEST(SampleStoreTest, LabelOrderDoesNotMatter) {
  FakeClock clock;
  SampleStore store(clock);
  store.write("c", gaugeBatch("g", {{"b", "2"}, {"a", "1"}}, 1), seconds(60));
  clock.advance(seconds(1));
  Labels reordered;
  reordered.set("a", "1");
  reordered.set("b", "2");
  store.write("c", gaugeBatch("g", reordered, 9), seconds(60));

  EXPECT_EQ(store.seriesCount(), 1u);
  const auto snap = store.snapshot();
  ASSERT_EQ(snap->seriesCount(), 1u);
  const auto& items = snap->family("g")->series[0].labels.items();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].name, "a");
  EXPECT_EQ(items[1].name, "b");
  EXPECT_EQ(snap->family("g")->series[0].value, 9);
  EXPECT_EQ(store.history("g", {{"a", "1"}, {"b", "2"}}, 0).size(), 2u);
}

TEST(SampleStoreTest, DistinctLabelValuesAreDistinctSeries) {
  FakeClock clock;
  SampleStore store(clock);
  SampleBatch b;
  b.gauge("g", "h", {{"a", "x"}}, 1);
  b.gauge("g", "h", {{"a", "y"}}, 2);
  b.gauge("g", "h", {}, 3);
  b.gauge("g", "h", {{"a", "x"}, {"b", "x"}}, 4);
  store.write("c", b, seconds(60));
  EXPECT_EQ(store.snapshot()->family("g")->series.size(), 4u);
}

// Label values come from the database (application_name, datname) and may contain any
// byte: a value must never make two different label sets share one series.
TEST(SampleStoreTest, LabelValuesCannotForgeAnotherLabelSet) {
  FakeClock clock;
  SampleStore store(clock);
  SampleBatch b;
  b.gauge("g", "h", {{"a", "1"}, {"b", "2"}}, 1);
  b.gauge("g", "h",
          {{"a",
            "1\x1f"
            "b=2"}},
          2);
  store.write("c", b, seconds(60));
  EXPECT_EQ(store.seriesCount(), 2u);
  const SnapshotFamily* fam = store.snapshot()->family("g");
  ASSERT_NE(fam, nullptr);
  EXPECT_EQ(fam->series.size(), 2u);
}

}  // namespace
}  // namespace dbpulse
