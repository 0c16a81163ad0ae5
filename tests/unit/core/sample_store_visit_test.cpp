// The rule engine's read API of SampleStore: visit(), names(), replace().
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "agent/core/sample_store.h"

namespace dbpulse {
namespace {

using std::chrono::seconds;

class StepClock final : public Clock {
 public:
  WallTime now() const override { return WallTime(std::chrono::milliseconds(now_ms_)); }
  void set(int64_t ms) { now_ms_ = ms; }

 private:
  int64_t now_ms_ = 1'000'000;
};

SampleBatch batchOf(const std::string& name, std::vector<std::pair<Labels, double>> series) {
  SampleBatch b;
  for (auto& [labels, value] : series) b.add(name, labels, value);
  return b;
}

struct Visited {
  Labels labels;
  std::vector<Point> points;
};

std::vector<Visited> visitAll(const SampleStore& store, const std::string& name, int64_t since) {
  std::vector<Visited> out;
  store.visit(name, since, [&](const Labels& labels, const Point* pts, size_t n) {
    out.push_back(Visited{labels, std::vector<Point>(pts, pts + n)});
  });
  std::sort(out.begin(), out.end(),
            [](const Visited& a, const Visited& b) { return a.labels.items() < b.labels.items(); });
  return out;
}

std::vector<int64_t> times(const std::vector<Point>& pts) {
  std::vector<int64_t> out;
  for (const auto& p : pts) out.push_back(p.t_ms);
  return out;
}

TEST(SampleStoreVisitTest, VisitsSeriesOfOneNameWithPointsSince) {
  StepClock clock;
  SampleStore store(clock);
  for (int64_t t : {1000, 2000, 3000}) {
    clock.set(t);
    store.write("c", batchOf("m", {{{{"a", "1"}}, double(t)}, {{{"a", "2"}}, 1}}), seconds(60));
    store.write("c", batchOf("other", {{{}, 5}}), seconds(60));
  }
  auto got = visitAll(store, "m", 2000);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].labels, (Labels{{"a", "1"}}));
  EXPECT_EQ(times(got[0].points), (std::vector<int64_t>{2000, 3000}));
  EXPECT_EQ(got[0].points.back().value, 3000);
  EXPECT_TRUE(visitAll(store, "missing", 0).empty());
}

TEST(SampleStoreVisitTest, SeriesWithoutPointsInRangeAreStillVisited) {
  StepClock clock;
  SampleStore store(clock);
  clock.set(1000);
  store.write("c", batchOf("m", {{{}, 1}}), seconds(60));
  auto got = visitAll(store, "m", 5000);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].points.empty());
}

TEST(SampleStoreVisitTest, IncludesUnexportedSeries) {
  StepClock clock;
  SampleStore store(clock);
  store.write("companion", batchOf("http_requests_total", {{{}, 1}}), seconds(60),
              /*exported=*/false);
  EXPECT_EQ(store.snapshot()->family("http_requests_total"), nullptr);
  EXPECT_EQ(visitAll(store, "http_requests_total", 0).size(), 1u);
  EXPECT_EQ(store.names(), (std::vector<std::string>{"http_requests_total"}));
}

TEST(SampleStoreVisitTest, WrappedHistoryComesOldestFirstWhateverTheStart) {
  StepClock clock;
  SampleStore store(clock, SampleStoreOptions{4});
  for (int64_t t = 1; t <= 6; ++t) {  // ring of 4 holding t=3..6, wrapped at head
    clock.set(t * 1000);
    store.write("c", batchOf("m", {{{}, double(t)}}), seconds(60));
  }
  const std::map<int64_t, std::vector<int64_t>> cases = {
      {0, {3000, 4000, 5000, 6000}},  // spans the wrap: copied
      {4000, {4000, 5000, 6000}},
      {5000, {5000, 6000}},  // within the newer segment: in place
      {6000, {6000}},
      {7000, {}},
  };
  for (const auto& [since, want] : cases) {
    auto got = visitAll(store, "m", since);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(times(got[0].points), want) << "since " << since;
  }
}

TEST(SampleStoreVisitTest, HistoryWindowBoundsEachSeriesByItsOwnWriteRate) {
  StepClock clock;
  SampleStoreOptions options;
  options.history_points = 1000;
  options.history_ms = 60'000;
  SampleStore store(clock, options);
  for (int64_t t = 0; t <= 600'000; t += 5'000) {
    clock.set(1'000'000 + t);
    store.write("fast", batchOf("fast", {{{}, double(t)}}), seconds(3600));
    if (t % 15'000 == 0) store.write("slow", batchOf("slow", {{{}, double(t)}}), seconds(3600));
  }
  // The last minute, both ends included: 13 points every 5 s, 5 points every 15 s.
  auto fast = visitAll(store, "fast", 0);
  auto slow = visitAll(store, "slow", 0);
  ASSERT_EQ(fast.size(), 1u);
  ASSERT_EQ(slow.size(), 1u);
  EXPECT_EQ(fast[0].points.size(), 13u);
  EXPECT_EQ(slow[0].points.size(), 5u);
  EXPECT_EQ(slow[0].points.front().t_ms, 1'000'000 + 540'000);
  EXPECT_EQ(slow[0].points.back().t_ms, 1'000'000 + 600'000);

  // Written faster from now on, the slow series grows again, oldest point first.
  for (int64_t t = 605'000; t <= 660'000; t += 5'000) {
    clock.set(1'000'000 + t);
    store.write("slow", batchOf("slow", {{{}, double(t)}}), seconds(3600));
  }
  slow = visitAll(store, "slow", 0);
  EXPECT_EQ(slow[0].points.size(), 13u);
  for (size_t i = 1; i < slow[0].points.size(); ++i) {
    EXPECT_LT(slow[0].points[i - 1].t_ms, slow[0].points[i].t_ms);
  }
  EXPECT_EQ(slow[0].points.front().t_ms, 1'000'000 + 600'000);
}

TEST(SampleStoreVisitTest, ExpiredAndDroppedSeriesLeaveTheNameIndex) {
  StepClock clock;
  SampleStore store(clock);
  clock.set(1000);
  store.write("short", batchOf("a", {{{}, 1}}), seconds(10));
  store.write("long", batchOf("b", {{{}, 1}}), seconds(100));
  store.write("gone", batchOf("c", {{{}, 1}}), seconds(100));
  store.dropSource("gone");
  EXPECT_EQ(store.names(), (std::vector<std::string>{"a", "b"}));
  clock.set(1000 + 10'000);
  EXPECT_EQ(store.names(), (std::vector<std::string>{"b"}));
  EXPECT_TRUE(visitAll(store, "a", 0).empty());
  EXPECT_TRUE(visitAll(store, "c", 0).empty());
  // A name that comes back is indexed again.
  store.write("short", batchOf("a", {{{}, 2}}), seconds(10));
  EXPECT_EQ(visitAll(store, "a", 0).size(), 1u);
}

TEST(SampleStoreVisitTest, ReplaceDropsSeriesTheNewBatchLacksOfThatSourceOnly) {
  StepClock clock;
  SampleStore store(clock);
  clock.set(1000);
  store.write("rules:g", batchOf("ALERTS", {{{{"alertstate", "pending"}}, 1}}), seconds(60));
  store.write("other", batchOf("ALERTS", {{{{"alertstate", "other"}}, 1}}), seconds(60));
  clock.set(2000);
  store.replace("rules:g", batchOf("ALERTS", {{{{"alertstate", "firing"}}, 1}}), seconds(60));
  auto got = visitAll(store, "ALERTS", 0);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].labels.get("alertstate"), "firing");
  EXPECT_EQ(got[1].labels.get("alertstate"), "other");
  // A series kept by replace() keeps its history.
  clock.set(3000);
  store.replace("rules:g", batchOf("ALERTS", {{{{"alertstate", "firing"}}, 1}}), seconds(60));
  got = visitAll(store, "ALERTS", 0);
  EXPECT_EQ(times(got[0].points), (std::vector<int64_t>{2000, 3000}));
  // An empty batch clears the source.
  store.replace("rules:g", SampleBatch{}, seconds(60));
  EXPECT_EQ(visitAll(store, "ALERTS", 0).size(), 1u);
}

}  // namespace
}  // namespace dbpulse
