#pragma once
// Cron expressions for the maintenance window: five fields (minute hour day-of-month month
// day-of-week), each `*`, a number, a range `a-b`, a list `a,b`, or a step `*/n` / `a-b/n`;
// day-of-week 0-7 with 0 and 7 both Sunday. As in cron, when both day fields are
// restricted a day matches if either does. Evaluated in the agent's local time.

#include <bitset>
#include <chrono>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "agent/core/duration.h"
#include "agent/core/status.h"

namespace dbpulse {

class CronSchedule {
 public:
  // InvalidArgument naming the field and what is wrong.
  static Result<CronSchedule> parse(std::string_view expr);

  // Whether the minute `local` (seconds ignored) is one the schedule names.
  bool matches(const std::tm& local) const;

  const std::string& text() const { return text_; }

  // The first minute strictly after `after` that the schedule names, looking ahead at most
  // `horizon` (nullopt past it, e.g. "0 0 30 2 *"). Skips whole hours and days that cannot
  // match, so a year's horizon costs at most ~9,000 local-time conversions.
  std::optional<std::chrono::system_clock::time_point> next(
      std::chrono::system_clock::time_point after,
      std::chrono::hours horizon = std::chrono::hours(24 * 366)) const;

 private:
  bool dayMatches(const std::tm& local) const;

  std::string text_;
  std::bitset<60> minute_;
  std::bitset<24> hour_;
  std::bitset<32> day_;     // 1-31
  std::bitset<13> month_;   // 1-12
  std::bitset<7> weekday_;  // 0-6, Sunday = 0
  bool day_restricted_ = false, weekday_restricted_ = false;
};

// When `now` lies inside a window (a minute the schedule matches, lasting `duration`), the
// start of that window; nullopt outside. Looks back at most `duration` (capped at 8 days).
std::optional<std::chrono::system_clock::time_point> windowStart(
    const CronSchedule& schedule, std::chrono::system_clock::time_point now, Duration duration);

}  // namespace dbpulse
