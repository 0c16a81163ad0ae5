#include "agent/maintenance.h"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <string>
#include <vector>

#include "agent/cron.h"

namespace dbpulse {
namespace {

std::tm at(int year, int month, int day, int hour, int minute) {
  std::tm t{};
  t.tm_year = year - 1900;
  t.tm_mon = month - 1;
  t.tm_mday = day;
  t.tm_hour = hour;
  t.tm_min = minute;
  t.tm_isdst = -1;
  std::time_t tt = std::mktime(&t);  // fills tm_wday
  localtime_r(&tt, &t);
  return t;
}

std::chrono::system_clock::time_point localTime(int year, int month, int day, int hour, int minute,
                                                int second = 0) {
  std::tm t = at(year, month, day, hour, minute);
  t.tm_sec = second;
  return std::chrono::system_clock::from_time_t(std::mktime(&t));
}

TEST(CronTest, FieldsListsRangesAndSteps) {
  auto c = CronSchedule::parse("*/15 2-4 * * 1-5");
  ASSERT_TRUE(c.ok()) << c.status().toString();
  EXPECT_TRUE(c->matches(at(2026, 11, 25, 2, 30)));  // a Wednesday
  EXPECT_FALSE(c->matches(at(2026, 11, 25, 2, 31)));
  EXPECT_FALSE(c->matches(at(2026, 11, 25, 5, 0)));
  EXPECT_FALSE(c->matches(at(2026, 11, 29, 3, 0)));  // a Sunday
  auto sunday = CronSchedule::parse("0 3 * * 7");
  ASSERT_TRUE(sunday.ok());
  EXPECT_TRUE(sunday->matches(at(2026, 11, 29, 3, 0))) << "7 is Sunday as well as 0";
  auto list = CronSchedule::parse("0,30 1 1,15 * *");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->matches(at(2026, 12, 15, 1, 30)));
  EXPECT_FALSE(list->matches(at(2026, 12, 14, 1, 30)));
}

TEST(CronTest, BothDayFieldsRestrictedMatchEither) {
  auto c = CronSchedule::parse("0 2 1 * 0");  // the 1st of the month, or any Sunday
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->matches(at(2026, 12, 1, 2, 0)));   // a Tuesday, the 1st
  EXPECT_TRUE(c->matches(at(2026, 11, 29, 2, 0)));  // a Sunday
  EXPECT_FALSE(c->matches(at(2026, 11, 25, 2, 0)));
}

TEST(CronTest, ErrorsNameTheField) {
  struct Case {
    const char* expr;
    const char* needle;
  };
  for (const Case& c : {Case{"0 2 * *", "5 fields"}, Case{"61 * * * *", "minute \"61\""},
                        Case{"0 24 * * *", "hour \"24\""}, Case{"0 2 0 * *", "day of month"},
                        Case{"0 2 * 13 *", "month \"13\""}, Case{"0 2 * * 8", "day of week"},
                        Case{"*/0 * * * *", "step"}, Case{"a * * * *", "not a number"},
                        Case{"5-1 * * * *", "within"}, Case{"1,,2 * * * *", "empty"}}) {
    auto r = CronSchedule::parse(c.expr);
    ASSERT_FALSE(r.ok()) << c.expr;
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos)
        << c.expr << ": " << r.status().message();
  }
}

TEST(CronTest, WindowStartsAtAMatchingMinuteAndLastsItsDuration) {
  auto c = CronSchedule::parse("0 2 * * *");
  ASSERT_TRUE(c.ok());
  const Duration two_hours(2 * 3'600'000);
  EXPECT_FALSE(windowStart(*c, localTime(2026, 11, 25, 1, 59, 59), two_hours).has_value());
  auto in = windowStart(*c, localTime(2026, 11, 25, 3, 10), two_hours);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(*in, localTime(2026, 11, 25, 2, 0));
  EXPECT_TRUE(windowStart(*c, localTime(2026, 11, 25, 3, 59, 59), two_hours).has_value());
  EXPECT_FALSE(windowStart(*c, localTime(2026, 11, 25, 4, 0), two_hours).has_value());
}

TEST(CronTest, NextIsTheFirstMatchingMinuteStrictlyAfter) {
  auto daily = CronSchedule::parse("0 2 * * *");
  ASSERT_TRUE(daily.ok());
  EXPECT_EQ(daily->next(localTime(2026, 11, 25, 1, 59, 59)), localTime(2026, 11, 25, 2, 0));
  EXPECT_EQ(daily->next(localTime(2026, 11, 25, 2, 0)), localTime(2026, 11, 26, 2, 0))
      << "strictly after: the window that opens now is not the next one";
  auto weekdays = CronSchedule::parse("30 3 * * 1-5");  // 2026-11-27 is a Friday
  ASSERT_TRUE(weekdays.ok());
  EXPECT_EQ(weekdays->next(localTime(2026, 11, 27, 4, 0)), localTime(2026, 11, 30, 3, 30));
  auto leap = CronSchedule::parse("0 0 29 2 *");
  ASSERT_TRUE(leap.ok());
  EXPECT_EQ(leap->next(localTime(2026, 11, 25, 0, 0), std::chrono::hours(24 * 366 * 2)),
            localTime(2028, 2, 29, 0, 0));
  auto never = CronSchedule::parse("0 0 30 2 *");
  ASSERT_TRUE(never.ok());
  EXPECT_FALSE(never->next(localTime(2026, 11, 25, 0, 0)).has_value());
}

collectors::PgRows statRows(
    const std::vector<std::tuple<std::string, double, double, double>>& tables) {
  collectors::PgRows rows;
  rows.columns = {"qualified", "name", "live", "dead", "modified"};
  for (const auto& [name, live, dead, modified] : tables) {
    rows.rows.push_back(
        {name, name, std::to_string(live), std::to_string(dead), std::to_string(modified)});
  }
  return rows;
}

TEST(MaintenancePlanTest, VacuumsDeadTablesFirstThenAnalyzesModifiedOnes) {
  const auto rows = statRows({
      {"public.messages", 100'000, 50'000, 0},  // 33 % dead: vacuum
      {"public.users", 10'000, 500, 5'000},     // few dead, 50 % modified: analyze
      {"public.sessions", 1'000, 9'000, 0},     // 90 % dead: vacuum, first
      {"public.tiny", 10, 90, 90},              // under 1,000 tuples: left alone
      {"public.calm", 100'000, 1'000, 2'000},   // 1 % dead, 2 % modified: left alone
  });
  const auto plan = planMaintenance(rows, {}, {});
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].name, "public.messages");  // most dead tuples first
  EXPECT_EQ(plan[0].operation, "vacuum");
  EXPECT_EQ(plan[1].name, "public.sessions");
  EXPECT_EQ(plan[2].name, "public.users");
  EXPECT_EQ(plan[2].operation, "analyze");
  EXPECT_EQ(maintenanceStatement(plan[0]), "VACUUM (ANALYZE, SKIP_LOCKED) public.messages");
  EXPECT_EQ(maintenanceStatement(plan[2]), "ANALYZE (SKIP_LOCKED) public.users");
}

TEST(MaintenancePlanTest, FullOnlyWhenNamedAndNamedTablesAreVacuumed) {
  const auto rows = statRows({{"public.messages", 100'000, 50'000, 0}, {"public.calm", 5, 0, 0}});
  auto plan = planMaintenance(rows, {"public.messages"}, {});
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(maintenanceStatement(plan[0]), "VACUUM (FULL, ANALYZE, SKIP_LOCKED) public.messages");
  plan = planMaintenance(rows, {}, {"public.calm"});
  ASSERT_EQ(plan.size(), 1u) << "only the table asked for, even if it needs nothing";
  EXPECT_EQ(plan[0].name, "public.calm");
  EXPECT_EQ(plan[0].operation, "vacuum");
}

}  // namespace
}  // namespace dbpulse
