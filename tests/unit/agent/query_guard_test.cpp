#include "agent/query_guard.h"

#include <gtest/gtest.h>

#include <string>

namespace dbpulse {
namespace {

CalledNames callsOf(std::string_view sql) {
  CalledNames n;
  collectCalls(sql, n);
  return n;
}

bool hasFunction(const CalledNames& n, const std::string& name) {
  return n.functions.count(name) > 0;
}

TEST(QueryGuardTest, FindsCallsQualifiedQuotedAndFolded) {
  const CalledNames n = callsOf(
      "SELECT PG_Terminate_Backend(pid), public.dblink_exec('x', 'y'), \"Odd\"(1), "
      "s.\"f\" (2) FROM t WHERE a IN (1, 2)");
  EXPECT_TRUE(hasFunction(n, "pg_terminate_backend"));
  EXPECT_TRUE(hasFunction(n, "dblink_exec"));
  EXPECT_TRUE(hasFunction(n, "Odd"));
  EXPECT_TRUE(hasFunction(n, "f"));
  EXPECT_TRUE(hasFunction(n, "in")) << "keywords before '(' are looked up too (and not found)";
  EXPECT_FALSE(hasFunction(n, "public"));
  EXPECT_FALSE(hasFunction(n, "t"));
}

TEST(QueryGuardTest, IgnoresNamesInsideStringsCommentsAndDollarQuotes) {
  const CalledNames n = callsOf(
      "SELECT 'pg_sleep(1)', E'it\\'s kill(2)', $$ boom(3) $$, $tag$ bang(4) $tag$ -- zap(5)\n"
      "/* outer /* nested(6) */ still(7) */ , $1, ok(8)");
  EXPECT_EQ(n.functions, (std::set<std::string>{"ok"}));
}

TEST(QueryGuardTest, CollectsOperatorSymbols) {
  const CalledNames n = callsOf("SELECT a + b, c ~~ 'x', d @@ e, f::int FROM t WHERE g <> h");
  for (const char* op : {"+", "~~", "@@", "<>"}) {
    EXPECT_TRUE(n.operators.count(op)) << op;
  }
  EXPECT_FALSE(n.operators.count(":")) << "a cast is not an operator";
}

TEST(QueryGuardTest, NamesThatCannotBeEmbeddedSafelyAreReportedUnsafe) {
  const CalledNames n = callsOf("SELECT \"a'b\"(1)");
  ASSERT_EQ(n.unsafe.size(), 1u);
  EXPECT_EQ(n.unsafe.front(), "a'b");
  EXPECT_TRUE(n.functions.empty());
  const auto params = volatileLookupParams(n);
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0], std::string()) << "an unsafe name is not looked up";
}

TEST(QueryGuardTest, PlanExpressionsAndForeignScansAreCollected) {
  const std::string plan = R"json([{"Plan": {"Node Type": "Nested Loop", "Output": ["x"],
    "Plans": [
      {"Node Type": "Seq Scan", "Relation Name": "locker(", "Output": ["pg_try_advisory_lock(42)"],
       "Filter": "(lower(name) = 'a'::text)"},
      {"Node Type": "Foreign Scan", "Relation Name": "remote", "Output": ["id"]},
      {"Node Type": "Function Scan", "Function Name": "generate_series"}]}}])json";
  CalledNames n;
  ASSERT_TRUE(collectPlanCalls(plan, n).ok());
  EXPECT_TRUE(hasFunction(n, "pg_try_advisory_lock"));
  EXPECT_TRUE(hasFunction(n, "lower"));
  EXPECT_TRUE(hasFunction(n, "generate_series"));
  EXPECT_FALSE(hasFunction(n, "locker")) << "relation names are not expressions";
  EXPECT_TRUE(n.foreign_scan);
  EXPECT_FALSE(collectPlanCalls("not json", n).ok());
}

TEST(QueryGuardTest, AllowListHoldsOnlyFunctionsWithoutOutsideEffects) {
  EXPECT_TRUE(volatileButHarmless("random"));
  EXPECT_TRUE(volatileButHarmless("clock_timestamp"));
  for (const char* f : {"pg_terminate_backend", "pg_cancel_backend", "dblink", "dblink_exec",
                        "pg_advisory_lock", "nextval", "set_config", "pg_notify", "lo_import"}) {
    EXPECT_FALSE(volatileButHarmless(f)) << f;
  }
}

TEST(QueryGuardTest, LookupBindsOnlyCheckedNames) {
  CalledNames n;
  n.functions = {"lower", "pg_terminate_backend", "no space"};
  n.operators = {"+", "@@", "x y"};
  const auto params = volatileLookupParams(n);
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0], std::string("lower pg_terminate_backend"));
  EXPECT_EQ(params[1], std::string("+ @@"));
  const auto empty = volatileLookupParams(CalledNames{});
  ASSERT_EQ(empty.size(), 2u);
  EXPECT_EQ(empty[0], std::string());
  EXPECT_EQ(empty[1], std::string());
  const std::string sql = kVolatileLookupSql;
  EXPECT_NE(sql.find("$1"), std::string::npos);
  EXPECT_NE(sql.find("$2"), std::string::npos);
  EXPECT_EQ(sql.find('+'), std::string::npos) << "names are bound, not embedded";
}

}  // namespace
}  // namespace dbpulse
