// Candidates from plans: the shapes are PostgreSQL 15's EXPLAIN (FORMAT JSON, VERBOSE) of
// the advisor benchmark's statements (tests/bench/advisor), trimmed to the fields read.

#include "agent/advisor_plan.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dbpulse::advisor {
namespace {

using Texts = std::vector<std::string>;

Texts texts(const std::vector<IndexKey>& keys) {
  Texts out;
  for (const auto& k : keys) out.push_back(k.text);
  return out;
}

// A parallel sequential scan of `table` as `alias` with `filter`.
std::string seqScan(const std::string& table, const std::string& alias, const std::string& filter) {
  nlohmann::json scan{{"Node Type", "Seq Scan"}, {"Schema", "public"},   {"Relation Name", table},
                      {"Alias", alias},          {"Total Cost", 6000.0}, {"Filter", filter}};
  nlohmann::json gather{{"Node Type", "Gather"}, {"Total Cost", 7000.0}, {"Plans", {scan}}};
  return nlohmann::json::array({{{"Plan", gather}}}).dump();
}

std::vector<PlanCandidate> candidates(const std::string& plan) {
  auto c = planCandidates(plan);
  EXPECT_TRUE(c.ok()) << c.status().toString();
  return c.ok() ? *c : std::vector<PlanCandidate>{};
}

TEST(AdvisorPlanCandidatesTest, ConjunctsSplitAtTopLevelAndOnly) {
  EXPECT_EQ(conjuncts("((t.status = $2) AND (t.assignee_id = $1))"),
            (Texts{"t.status = $2", "t.assignee_id = $1"}));
  EXPECT_EQ(conjuncts("(a.x = 'x AND y'::text)"), (Texts{"a.x = 'x AND y'::text"}));
  EXPECT_EQ(conjuncts("((a.x = 1) AND ((a.y = 2) AND (a.z > 3)))"),
            (Texts{"a.x = 1", "a.y = 2", "a.z > 3"}));
  EXPECT_TRUE(conjuncts("((a.x = 1) OR (a.y = 2))").empty());
  EXPECT_EQ(withoutOuterParens("(a) = (b)"), "(a) = (b)");
  EXPECT_EQ(withoutOuterParens("((a = b))"), "a = b");
}

TEST(AdvisorPlanCandidatesTest, InListIsAnEqualityOnTheColumn) {
  auto c = candidates(
      seqScan("orders", "orders", "(orders.external_ref = ANY (ARRAY[md5($1), md5($2)]))"));
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].table, "orders");
  EXPECT_EQ(texts(c[0].keys()), Texts{"external_ref"});
  EXPECT_FALSE(c[0].keys()[0].expression);
}

TEST(AdvisorPlanCandidatesTest, ValueSideMayBeAnyExpressionOfParameters) {
  auto c = candidates(seqScan("orders", "o", "(o.coupon_code = ($2 || $1))"));
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(texts(c[0].keys()), Texts{"coupon_code"});
  EXPECT_EQ(c[0].keys()[0].param, 0);  // not a lone $N
}

TEST(AdvisorPlanCandidatesTest, FunctionOfAColumnIsAnExpressionKeyNotAColumn) {
  auto c = candidates(
      seqScan("customers", "customers", "(lower(customers.email) = lower((($2 || $1) || $3)))"));
  ASSERT_EQ(c.size(), 1u);
  const auto keys = c[0].keys();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].text, "lower(email)");
  EXPECT_TRUE(keys[0].expression);
}

TEST(AdvisorPlanCandidatesTest, JsonFieldIsAnExpressionKey) {
  auto c = candidates(
      seqScan("events", "events", "((events.payload ->> 'session'::text) = ($2 || $1))"));
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(c[0].keys().size(), 1u);
  EXPECT_EQ(c[0].keys()[0].text, "payload ->> 'session'::text");
  EXPECT_TRUE(c[0].keys()[0].expression);
}

TEST(AdvisorPlanCandidatesTest, CastThatAnIndexOnTheColumnCannotServeIsNeverTheColumn) {
  auto c = candidates(seqScan("orders", "orders", "((orders.customer_id)::numeric = $1)"));
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(c[0].keys().size(), 1u);
  EXPECT_EQ(c[0].keys()[0].text, "(customer_id)::numeric");
  EXPECT_TRUE(c[0].keys()[0].expression);
  // A cast to text of a varchar column is served by the column's index.
  c = candidates(seqScan("users", "u", "(((u.name)::text = $1) AND (u.org = 3))"));
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(texts(c[0].keys()), (Texts{"name", "org"}));
  EXPECT_FALSE(c[0].keys()[0].expression);
}

TEST(AdvisorPlanCandidatesTest, LikeIsAPrefixRangeWithItsParameter) {
  auto c = candidates(seqScan("tickets", "tickets", "(tickets.subject ~~ $1)"));
  ASSERT_EQ(c.size(), 1u);
  ASSERT_EQ(c[0].keys().size(), 1u);
  EXPECT_EQ(c[0].keys()[0].text, "subject");
  EXPECT_TRUE(c[0].keys()[0].like);
  EXPECT_EQ(c[0].keys()[0].param, 1);
}

TEST(AdvisorPlanCandidatesTest, RangeAfterEqualitiesAndAVolatileValueSide) {
  auto c = candidates(seqScan("tickets", "tickets",
                              "((tickets.created_at > (now() - $1)) AND (tickets.org_id = $2))"));
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(texts(c[0].keys()), (Texts{"org_id", "created_at"}));
  EXPECT_FALSE(c[0].keys()[1].like);
}

TEST(AdvisorPlanCandidatesTest, BareBooleanAndSameTableComparisonsAreNotKeys) {
  EXPECT_TRUE(candidates(seqScan("orders", "orders", "orders.is_gift")).empty());
  EXPECT_TRUE(candidates(seqScan("t", "t", "(t.a = t.b)")).empty());
  EXPECT_TRUE(candidates(seqScan("t", "t", "(t.a IS NULL)")).empty());
}

TEST(AdvisorPlanCandidatesTest, HashJoinKeysAreCandidatesOnBothSides) {
  // SELECT ... FROM orders o JOIN order_items oi ON oi.order_id = o.id WHERE o.customer_id = $1
  const char* plan = R"json([{"Plan": {"Node Type": "Hash Join", "Total Cost": 11368.65,
    "Join Type": "Inner", "Hash Cond": "(oi.order_id = o.id)", "Plans": [
      {"Node Type": "Seq Scan", "Schema": "public", "Relation Name": "order_items",
       "Alias": "oi", "Total Cost": 10368.0},
      {"Node Type": "Hash", "Total Cost": 16.23, "Plans": [
        {"Node Type": "Bitmap Heap Scan", "Schema": "public", "Relation Name": "orders",
         "Alias": "o", "Total Cost": 16.23, "Recheck Cond": "(o.customer_id = $1)"}]}]}}])json";
  auto c = candidates(plan);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].table, "order_items");
  EXPECT_EQ(c[0].source, CandidateSource::kJoin);
  EXPECT_EQ(texts(c[0].keys()), Texts{"order_id"});
  EXPECT_DOUBLE_EQ(c[0].scan_cost, 10368.0);
  EXPECT_EQ(c[1].table, "orders");
  EXPECT_EQ(texts(c[1].keys()), Texts{"id"});
}

TEST(AdvisorPlanCandidatesTest, AntiJoinKeyAndTheOuterFilterBothCount) {
  // SELECT t.id FROM tickets t WHERE t.org_id = $1 AND NOT EXISTS (SELECT FROM comments c
  // WHERE c.ticket_id = t.id)
  const char* plan = R"json([{"Plan": {"Node Type": "Gather", "Total Cost": 20000, "Plans": [
    {"Node Type": "Hash Join", "Join Type": "Anti", "Total Cost": 19000,
     "Hash Cond": "(t.id = c.ticket_id)", "Plans": [
      {"Node Type": "Seq Scan", "Schema": "public", "Relation Name": "tickets", "Alias": "t",
       "Total Cost": 5000, "Filter": "(t.org_id = $1)"},
      {"Node Type": "Hash", "Plans": [
        {"Node Type": "Seq Scan", "Schema": "public", "Relation Name": "comments",
         "Alias": "c", "Total Cost": 13000}]}]}]}}])json";
  auto c = candidates(plan);
  std::vector<std::pair<std::string, Texts>> got;
  for (const auto& x : c) got.emplace_back(x.table, texts(x.keys()));
  EXPECT_EQ(got, (std::vector<std::pair<std::string, Texts>>{
                     {"tickets", {"id"}}, {"comments", {"ticket_id"}}, {"tickets", {"org_id"}}}));
}

TEST(AdvisorPlanCandidatesTest, SortRightAboveTheScanFollowsTheEqualityKeys) {
  const char* plan = R"json([{"Plan": {"Node Type": "Limit", "Total Cost": 12669, "Plans": [
    {"Node Type": "Gather Merge", "Plans": [
      {"Node Type": "Sort", "Sort Key": ["events.created_at DESC"], "Plans": [
        {"Node Type": "Seq Scan", "Schema": "public", "Relation Name": "events",
         "Alias": "events", "Total Cost": 11576, "Filter": "(events.tenant_id = $1)"}]}]}]}}])json";
  auto c = candidates(plan);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(texts(c[0].keys()), (Texts{"tenant_id", "created_at"}));
}

TEST(AdvisorPlanCandidatesTest, QuotedNamesAndStringsThatLookLikeReferences) {
  auto c =
      candidates(seqScan("Orders", "o", "((o.\"Status\" = 'a.b'::text) AND (o.\"x\"\"y\" = $1))"));
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(texts(c[0].keys()), (Texts{"Status", "x\"y"}));
}

TEST(AdvisorPlanCandidatesTest, NotAPlanIsAnError) {
  EXPECT_FALSE(planCandidates("not json").ok());
  EXPECT_FALSE(planCandidates("[]").ok());
  EXPECT_FALSE(planCandidates("[{\"Plan\": 1}]").ok() &&
               !planCandidates("[{\"Plan\": 1}]")->empty());
}

// A covering index needs every column the scan reads: its filter's and its output's.
std::string scanWithOutput(const nlohmann::json& output, const std::string& filter) {
  nlohmann::json scan{
      {"Node Type", "Seq Scan"}, {"Schema", "public"}, {"Relation Name", "orders"}, {"Alias", "o"},
      {"Total Cost", 6000.0},    {"Filter", filter},   {"Output", output}};
  return nlohmann::json::array({{{"Plan", scan}}}).dump();
}

TEST(AdvisorPlanCandidatesTest, ReadsAreTheFilterAndOutputColumnsOfTheScannedAlias) {
  auto c = candidates(scanWithOutput({"o.total", "(o.placed_at)::date"}, "(o.customer_id = $1)"));
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].reads, (Texts{"customer_id", "placed_at", "total"}));
  // A query of one table: unqualified output columns; an unqualified expression is unknown.
  auto single = candidates(scanWithOutput({"total", "\"Note\""}, "(o.customer_id = $1)"));
  ASSERT_EQ(single.size(), 1u);
  EXPECT_EQ(single[0].reads, (Texts{"Note", "customer_id", "total"}));
  auto expr = candidates(scanWithOutput({"(total * 2)"}, "(o.customer_id = $1)"));
  ASSERT_EQ(expr.size(), 1u);
  EXPECT_TRUE(expr[0].reads.empty());
}

TEST(AdvisorPlanCandidatesTest, AWholeRowOrNoOutputLeavesReadsUnknown) {
  auto whole = candidates(scanWithOutput({"o.*"}, "(o.customer_id = $1)"));
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_TRUE(whole[0].reads.empty());
  auto row = candidates(scanWithOutput({"o"}, "(o.customer_id = $1)"));
  ASSERT_EQ(row.size(), 1u);
  EXPECT_TRUE(row[0].reads.empty());
  auto none = candidates(seqScan("orders", "o", "(o.customer_id = $1)"));
  ASSERT_EQ(none.size(), 1u);
  EXPECT_TRUE(none[0].reads.empty());
}

}  // namespace
}  // namespace dbpulse::advisor
