#include "agent/advisor.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <stop_token>
#include <string>
#include <vector>

#include "agent/advisor_plan.h"
#include "agent/core/sample.h"

namespace dbpulse {
namespace {

using Columns = std::vector<std::string>;

// The shape of PostgreSQL 15's EXPLAIN (FORMAT JSON, VERBOSE) for a parallel top-N chat read.
const char* kParallelTopN = R"json([{"Plan": {"Node Type": "Limit", "Total Cost": 3947.04,
  "Plans": [{"Node Type": "Gather Merge", "Total Cost": 3959.23,
    "Plans": [{"Node Type": "Sort", "Sort Key": ["messages.created_at DESC"],
      "Plans": [{"Node Type": "Seq Scan", "Schema": "public", "Relation Name": "messages",
        "Alias": "messages", "Total Cost": 2941.59,
        "Filter": "((messages.conversation_id = $1) AND (messages.deleted_at IS NULL))"
}]
}]
}]
}
}])json";

Columns keyTexts(const std::vector<advisor::IndexKey>& keys) {
  Columns out;
  for (const auto& k : keys) out.push_back(k.text);
  return out;
}

TEST(AdvisorPlanTest, SeqScanWithEqualityFilterUnderASortSuggestsBoth) {
  auto c = advisor::planCandidates(kParallelTopN);
  ASSERT_TRUE(c.ok()) << c.status().toString();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].schema, "public");
  EXPECT_EQ((*c)[0].table, "messages");
  EXPECT_EQ(keyTexts((*c)[0].equality), Columns{"conversation_id"});
  EXPECT_EQ(keyTexts((*c)[0].sort), Columns{"created_at"});
  EXPECT_EQ(keyTexts((*c)[0].keys()), (Columns{"conversation_id", "created_at"}));
  EXPECT_DOUBLE_EQ(planCostOf(kParallelTopN).value(), 3947.04);
}

TEST(AdvisorPlanTest, FilterConditionsByKind) {
  const char* plan = R"json([{"Plan": {"Node Type": "Seq Scan", "Schema": "chat",
    "Relation Name": "Participants", "Alias": "p", "Total Cost": 10,
    "Filter": "((p.user_id = ANY ($1)) AND (p.joined_at >= '2024-01-01 00:00:00+00'::timestamp with time zone) AND (p.\"Role\" = 'admin'::text) AND (p.left_at < $2) AND (p.user_id <> 3))"
}
}])json";
  auto c = advisor::planCandidates(plan);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].table, "Participants");
  EXPECT_EQ(keyTexts((*c)[0].equality), (Columns{"user_id", "Role"}));
  EXPECT_EQ(keyTexts((*c)[0].range), (Columns{"joined_at", "left_at"}));
  // Equality columns, then the first range column; the ORDER BY is not applicable then.
  EXPECT_EQ(keyTexts((*c)[0].keys()), (Columns{"user_id", "Role", "joined_at"}));
}

// A cast in the filter is not a column: "(customer_id)::numeric = $1" once suggested
// CREATE INDEX ... (numeric). A varchar column cast to text still is its column (an index
// on it serves the comparison); any other cast is an expression key, never the column.
TEST(AdvisorPlanTest, CastsAreNeverReadAsColumns) {
  const char* plan = R"json([{"Plan": {"Node Type": "Seq Scan", "Schema": "public",
    "Relation Name": "orders", "Alias": "o", "Total Cost": 10,
    "Filter": "(((o.customer_id)::numeric = $1) AND ((o.status)::text = 'paid'::text) AND ((o.code)::character varying = $2) AND ((lower(o.email))::text = $3) AND ((o.region)::bpchar >= $4))"
}
}])json";
  auto c = advisor::planCandidates(plan);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 1u);
  const auto& eq = (*c)[0].equality;
  ASSERT_EQ(eq.size(), 4u);
  EXPECT_EQ(eq[0].text, "(customer_id)::numeric");
  EXPECT_TRUE(eq[0].expression);
  EXPECT_EQ(eq[1].text, "status");
  EXPECT_FALSE(eq[1].expression);
  EXPECT_EQ(eq[2].text, "code");
  EXPECT_TRUE(eq[3].expression);
  EXPECT_EQ(keyTexts((*c)[0].range), Columns{"region"});
  for (const auto& k : (*c)[0].keys()) {
    EXPECT_NE(k.text, "numeric");
    EXPECT_NE(k.text, "customer_id");
    EXPECT_NE(k.text, "text");
  }
}

TEST(AdvisorPlanTest, AJoinConditionInAScanFilterIsAJoinKeyNotAFilter) {
  const char* plan = R"json([{"Plan": {"Node Type": "Nested Loop", "Total Cost": 50,
    "Plans": [{"Node Type": "Seq Scan", "Schema": "public", "Relation Name": "users",
               "Alias": "users", "Total Cost": 20},
              {"Node Type": "Seq Scan", "Schema": "public", "Relation Name": "messages",
               "Alias": "messages", "Total Cost": 30,
               "Filter": "(messages.sender_id = users.id)"}]
}
}])json";
  auto c = advisor::planCandidates(plan);
  ASSERT_TRUE(c.ok());
  // The scan filter compares with another relation's column: the inner side of a nested
  // loop, which an index on messages(sender_id) serves.
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].table, "messages");
  EXPECT_EQ(keyTexts((*c)[0].keys()), Columns{"sender_id"});
}

TEST(AdvisorPlanTest, SortByAnExpressionIsNotAnIndexOrder) {
  const char* plan = R"json([{"Plan": {"Node Type": "Sort", "Sort Key": ["lower(u.name)"],
    "Plans": [{"Node Type": "Seq Scan", "Schema": "public", "Relation Name": "users",
               "Alias": "u", "Total Cost": 20, "Filter": "(u.status = $1)"}]
}
}])json";
  auto c = advisor::planCandidates(plan);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 1u);
  EXPECT_TRUE((*c)[0].sort.empty());
  EXPECT_EQ(keyTexts((*c)[0].keys()), Columns{"status"});
}

TEST(AdvisorPlanTest, HypotheticalIndexUseAndBadInput) {
  const char* plan = R"json([{"Plan": {"Node Type": "Limit", "Total Cost": 76.39,
    "Plans": [{"Node Type": "Index Scan",
               "Index Name": "<13556>btree_messages_conversation_id_created_at"}]}}])json";
  EXPECT_TRUE(planUsesIndex(plan, "<13556>btree_messages_conversation_id_created_at"));
  EXPECT_FALSE(planUsesIndex(kParallelTopN, "<13556>btree_messages_conversation_id_created_at"));
  EXPECT_FALSE(advisor::planCandidates("not json").ok());
  EXPECT_FALSE(advisor::planCandidates("[]").ok());
  EXPECT_FALSE(planCostOf("{}").ok());
}

TEST(AdvisorTextTest, HighestParameterIgnoresStrings) {
  EXPECT_EQ(highestParameter("SELECT 1"), 0);
  EXPECT_EQ(highestParameter("SELECT * FROM t WHERE a = $1 AND b = $12 LIMIT $3"), 12);
  EXPECT_EQ(highestParameter("SELECT '$9' || $2"), 2);
}

TEST(AdvisorTextTest, FirstKeywordSkipsSpaceCommentsAndParentheses) {
  EXPECT_EQ(firstKeyword("  select 1"), "SELECT");
  EXPECT_EQ(firstKeyword("-- why\n/* chat */ (WITH x AS (SELECT 1) SELECT * FROM x)"), "WITH");
  EXPECT_EQ(firstKeyword("delete from t"), "DELETE");
  EXPECT_EQ(firstKeyword("/* unterminated"), "");
  EXPECT_EQ(firstKeyword(""), "");
}

// Defect 8: the hourly advisor job and the admin routes share one gate, so their runs
// never overlap. While an admin run holds it, the job waits (here: past its deadline) and
// never opens a session of its own.
TEST(AdvisorGateTest, TheHourlyJobWaitsForAnAdminRunInsteadOfOverlapping) {
  auto gate = std::make_shared<AdvisorGate>();
  ASSERT_TRUE(gate->tryEnter());  // an admin index-suggestions run
  EXPECT_FALSE(gate->tryEnter());
  AdvisorOptions o;
  o.session.dsn = "host=127.0.0.1 port=1 connect_timeout=1";  // never reached
  AdvisorJob job(o, gate);
  std::stop_source stop;
  const collectors::CollectContext ctx{
      WallTime{}, std::chrono::steady_clock::now() + std::chrono::milliseconds(50),
      stop.get_token()};
  SampleBatch out;
  const Status s = job.run(ctx, out);
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.toString();
  EXPECT_NE(s.message().find("still in progress"), std::string::npos) << s.toString();
  gate->leave();
  EXPECT_TRUE(gate->tryEnter()) << "the job must not keep the gate after giving up";
  gate->leave();
}

TEST(AdvisorGateTest, AWaiterEntersWhenTheHolderLeavesAndStopsOnShutdown) {
  AdvisorGate gate;
  ASSERT_TRUE(gate.tryEnter());
  const auto far = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto waiter = std::async(std::launch::async, [&] { return gate.enter(far, {}); });
  EXPECT_EQ(waiter.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout);
  gate.leave();
  EXPECT_TRUE(waiter.get());
  EXPECT_FALSE(gate.tryEnter()) << "the waiter holds the gate now";

  std::stop_source stop;
  auto stopped = std::async(std::launch::async, [&] { return gate.enter(far, stop.get_token()); });
  stop.request_stop();
  EXPECT_FALSE(stopped.get());
  gate.leave();
}

TEST(AdvisorGateTest, KeepsTheLatestAnswerForReadersWithoutTheGate) {
  AdvisorGate gate;
  EXPECT_EQ(gate.latest(), nullptr) << "no answer before the first run";
  IndexSuggestions first;
  first.notes = {"first"};
  gate.publish(first, 1000);
  const auto held = gate.latest();
  ASSERT_NE(held, nullptr);
  ASSERT_TRUE(gate.tryEnter()) << "publishing does not take the gate";
  IndexSuggestions second;
  second.notes = {"second"};
  gate.publish(second, 2000);
  gate.leave();
  EXPECT_EQ(held->suggestions.notes, std::vector<std::string>{"first"})
      << "a reader's copy stays valid after a newer answer";
  EXPECT_EQ(gate.latest()->at_ms, 2000);
  EXPECT_EQ(gate.latest()->suggestions.notes, std::vector<std::string>{"second"});
}

}  // namespace
}  // namespace dbpulse
