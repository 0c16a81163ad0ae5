// Choosing a set of indexes against a fake planner: each statement has a few possible plans,
// each needing some indexes; the fake picks the cheapest plan whose indexes exist, as the
// real planner does with hypothetical indexes.

#include "agent/advisor_select.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace dbpulse::advisor {
namespace {

struct FakePlan {
  std::set<size_t> needs;
  double cost;
};

class FakeWhatIf final : public WhatIf {
 public:
  explicit FakeWhatIf(std::vector<std::vector<FakePlan>> statements)
      : statements_(std::move(statements)) {}

  Status add(size_t c) override {
    if (refuse_.count(c)) return invalidArgument("unsupported index definition");
    present_.insert(c);
    return okStatus();
  }
  void refuse(size_t c) { refuse_.insert(c); }
  Status remove(size_t c) override {
    present_.erase(c);
    return okStatus();
  }
  Result<WhatIfPlan> plan(size_t s) override {
    ++plans_;
    WhatIfPlan best{1e18, {}};
    for (const auto& p : statements_.at(s)) {
      bool ok = true;
      for (size_t c : p.needs) ok = ok && present_.count(c) > 0;
      if (ok && p.cost < best.cost) best = {p.cost, {p.needs.begin(), p.needs.end()}};
    }
    return best;
  }
  const std::set<size_t>& present() const { return present_; }
  int plans() const { return plans_; }

 private:
  std::vector<std::vector<FakePlan>> statements_;
  std::set<size_t> present_;
  std::set<size_t> refuse_;
  int plans_ = 0;
};

std::vector<size_t> chosenOf(const Selection& s) {
  std::vector<size_t> out;
  for (const auto& c : s.chosen) out.push_back(c.candidate);
  return out;
}

SelectionInput input(size_t candidates, std::vector<double> baseline,
                     std::vector<double> weights = {}) {
  SelectionInput in;
  in.candidates = candidates;
  in.baseline_costs = std::move(baseline);
  in.weights = weights.empty() ? std::vector<double>(in.baseline_costs.size(), 1) : weights;
  return in;
}

TEST(AdvisorSelectTest, APairThatOnlyHelpsTogetherIsChosenWhole) {
  // One statement: 1000 without indexes, 980 with either alone, 100 with both.
  FakeWhatIf planner({{{{}, 1000}, {{0}, 980}, {{1}, 980}, {{0, 1}, 100}}});
  auto sel = chooseIndexes(planner, input(2, {1000}));
  ASSERT_TRUE(sel.ok()) << sel.status().toString();
  EXPECT_EQ(chosenOf(*sel), (std::vector<size_t>{0, 1}));
  EXPECT_NEAR(sel->chosen[0].improvement, 0.9, 1e-9);
  ASSERT_EQ(sel->chosen[0].statements.size(), 1u);
  EXPECT_DOUBLE_EQ(sel->chosen[0].statements[0].before, 1000);
  EXPECT_DOUBLE_EQ(sel->chosen[0].statements[0].after, 100);
  EXPECT_EQ(planner.present(), (std::set<size_t>{0, 1}));
}

TEST(AdvisorSelectTest, ANarrowIndexThatAWiderOneCoversIsDropped) {
  // Candidate 0 = (a), 1 = (a, b). Statement 0 filters on a: 10 with (a), 11 with (a, b).
  // Statement 1 filters on a and b: 50 with (a), 5 with (a, b).
  FakeWhatIf planner({{{{}, 1000}, {{0}, 10}, {{1}, 11}}, {{{}, 1000}, {{0}, 50}, {{1}, 5}}});
  auto sel = chooseIndexes(planner, input(2, {1000, 1000}));
  ASSERT_TRUE(sel.ok());
  EXPECT_EQ(chosenOf(*sel), std::vector<size_t>{1});
  ASSERT_EQ(sel->chosen[0].statements.size(), 2u);
  ASSERT_EQ(sel->rejected.size(), 1u);
  EXPECT_EQ(sel->rejected[0].first, 0u);
  EXPECT_EQ(planner.present(), std::set<size_t>{1});
}

TEST(AdvisorSelectTest, UnusedAndTooSmallGainsAreRejectedWithWhy) {
  // Candidate 0 is never used; candidate 1 saves 5 % of a statement.
  FakeWhatIf planner({{{{}, 1000}, {{1}, 950}}});
  auto sel = chooseIndexes(planner, input(2, {1000}));
  ASSERT_TRUE(sel.ok());
  EXPECT_TRUE(sel->chosen.empty());
  ASSERT_EQ(sel->rejected.size(), 2u);
  EXPECT_EQ(sel->rejected[0], (std::pair<size_t, std::string>{0, "the planner would not use it"}));
  EXPECT_EQ(sel->rejected[1].first, 1u);
  EXPECT_NE(sel->rejected[1].second.find("5 %"), std::string::npos) << sel->rejected[1].second;
  EXPECT_TRUE(planner.present().empty());
}

TEST(AdvisorSelectTest, GainsAreWeightedByCalls) {
  // Candidate 0 helps a statement called once a lot; it is 1 % of the weighted cost of the
  // two statements it serves, the other called a thousand times and barely helped.
  FakeWhatIf planner({{{{}, 1000}, {{0}, 10}}, {{{}, 1000}, {{0}, 999}}});
  auto sel = chooseIndexes(planner, input(1, {1000, 1000}, {1, 1000}));
  ASSERT_TRUE(sel.ok());
  EXPECT_TRUE(sel->chosen.empty());
}

TEST(AdvisorSelectTest, IndependentIndexesOfDifferentStatementsAreAllKept) {
  FakeWhatIf planner({{{{}, 500}, {{0}, 5}}, {{{}, 800}, {{1}, 8}}, {{{}, 300}, {{2}, 3}}});
  auto sel = chooseIndexes(planner, input(3, {500, 800, 300}));
  ASSERT_TRUE(sel.ok());
  EXPECT_EQ(chosenOf(*sel), (std::vector<size_t>{0, 1, 2}));
  ASSERT_EQ(sel->final_plans.size(), 3u);
  EXPECT_DOUBLE_EQ(sel->final_plans[1].cost, 8);
}

TEST(AdvisorSelectTest, ACandidateThatCannotBeCreatedIsRejectedAndTheOthersGoOn) {
  FakeWhatIf planner({{{{}, 500}, {{0}, 5}}, {{{}, 800}, {{1}, 8}}});
  planner.refuse(0);
  auto sel = chooseIndexes(planner, input(2, {500, 800}));
  ASSERT_TRUE(sel.ok()) << sel.status().toString();
  EXPECT_EQ(chosenOf(*sel), std::vector<size_t>{1});
  ASSERT_EQ(sel->rejected.size(), 1u);
  EXPECT_EQ(sel->rejected[0].first, 0u);
  EXPECT_NE(sel->rejected[0].second.find("unsupported index definition"), std::string::npos);
}

TEST(AdvisorSelectTest, WritesOutweighingTheSavingsDoNotPay) {
  EXPECT_TRUE(paysForItself(1000, 10));
  EXPECT_FALSE(paysForItself(10, 1000));
  EXPECT_TRUE(paysForItself(0, 0));
}

// Candidate 1 covers candidate 0 (same keys, INCLUDE): it stays only when the Index Only
// Scan saves min_improvement over the plain index's plan, which it is measured against even
// though no plan uses the plain one while both exist.
TEST(AdvisorSelectTest, CoveringIndexIsKeptOnlyWhenItBeatsItsPlainIndex) {
  SelectionInput in{2, {1}, {5000}, 0.10, {{1, 0}}};
  // A hundred rows: the Index Only Scan skips a hundred heap reads.
  FakeWhatIf large({{{{}, 5000}, {{0}, 400}, {{1}, 50}}});
  auto s = chooseIndexes(large, in);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(chosenOf(*s), (std::vector<size_t>{1}));
  EXPECT_EQ(large.present(), (std::set<size_t>{1}));

  // 12 % off the plain plan: under a quarter.
  FakeWhatIf small({{{{}, 5000}, {{0}, 400}, {{1}, 350}}});
  s = chooseIndexes(small, in);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(chosenOf(*s), (std::vector<size_t>{0}));
  ASSERT_EQ(s->rejected.size(), 1u);
  EXPECT_EQ(s->rejected[0].first, 1u);

  // A two-row lookup: 44 % off the plain plan, but two heap reads.
  FakeWhatIf lookup({{{{}, 5000}, {{0}, 16}, {{1}, 9}}});
  s = chooseIndexes(lookup, in);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(chosenOf(*s), (std::vector<size_t>{0}));
}

}  // namespace
}  // namespace dbpulse::advisor
