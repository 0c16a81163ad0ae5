#include "agent/cron.h"

#include <charconv>
#include <vector>

namespace dbpulse {
namespace {

struct FieldSpec {
  const char* name;
  int min, max;
};

// Sets the bits (value - offset) of one field's comma list; the error says why not.
template <size_t N>
Status parseField(std::string_view text, const FieldSpec& spec, int offset, std::bitset<N>& out,
                  bool& restricted) {
  restricted = text != "*";
  auto number = [&](std::string_view s, int& v) {
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size();
  };
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    const std::string what = std::string(spec.name) + " \"" + std::string(item) + "\"";
    if (item.empty()) return invalidArgument(std::string(spec.name) + ": empty list item");
    int step = 1;
    std::string_view range = item;
    if (const size_t slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      if (!number(item.substr(slash + 1), step) || step < 1) {
        return invalidArgument(what + ": the step must be a positive number");
      }
    }
    int lo = spec.min, hi = spec.max;
    if (range != "*") {
      const size_t dash = range.find('-');
      if (dash == std::string_view::npos) {
        if (!number(range, lo)) return invalidArgument(what + ": not a number, range or *");
        hi = item.find('/') != std::string_view::npos ? spec.max : lo;
      } else if (!number(range.substr(0, dash), lo) || !number(range.substr(dash + 1), hi)) {
        return invalidArgument(what + ": not a number, range or *");
      }
    }
    if (lo < spec.min || hi > spec.max || lo > hi) {
      return invalidArgument(what + ": must lie within " + std::to_string(spec.min) + "-" +
                             std::to_string(spec.max));
    }
    for (int v = lo; v <= hi; v += step)
      out.set(static_cast<size_t>((v - offset) % static_cast<int>(N)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return okStatus();
}

}  // namespace

Result<CronSchedule> CronSchedule::parse(std::string_view expr) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < expr.size()) {
    while (i < expr.size() && (expr[i] == ' ' || expr[i] == '\t')) ++i;
    const size_t start = i;
    while (i < expr.size() && expr[i] != ' ' && expr[i] != '\t') ++i;
    if (i > start) fields.push_back(expr.substr(start, i - start));
  }
  if (fields.size() != 5) {
    return invalidArgument(
        "must be a cron expression with 5 fields (minute hour day month "
        "weekday), got " +
        std::to_string(fields.size()));
  }
  CronSchedule s;
  s.text_ = std::string(expr);
  bool ignored = false;
  if (Status st = parseField(fields[0], {"minute", 0, 59}, 0, s.minute_, ignored); !st.ok())
    return st;
  if (Status st = parseField(fields[1], {"hour", 0, 23}, 0, s.hour_, ignored); !st.ok()) return st;
  if (Status st = parseField(fields[2], {"day of month", 1, 31}, 0, s.day_, s.day_restricted_);
      !st.ok()) {
    return st;
  }
  if (Status st = parseField(fields[3], {"month", 1, 12}, 0, s.month_, ignored); !st.ok())
    return st;
  // 7 is Sunday too: (7 - 0) % 7 == 0.
  if (Status st =
          parseField(fields[4], {"day of week", 0, 7}, 0, s.weekday_, s.weekday_restricted_);
      !st.ok()) {
    return st;
  }
  return s;
}

bool CronSchedule::matches(const std::tm& t) const {
  return minute_.test(static_cast<size_t>(t.tm_min)) &&
         hour_.test(static_cast<size_t>(t.tm_hour)) && dayMatches(t);
}

bool CronSchedule::dayMatches(const std::tm& t) const {
  if (!month_.test(static_cast<size_t>(t.tm_mon) + 1)) return false;
  const bool day = day_.test(static_cast<size_t>(t.tm_mday));
  const bool weekday = weekday_.test(static_cast<size_t>(t.tm_wday));
  if (day_restricted_ && weekday_restricted_) return day || weekday;
  return day && weekday;
}

std::optional<std::chrono::system_clock::time_point> CronSchedule::next(
    std::chrono::system_clock::time_point after, std::chrono::hours horizon) const {
  using namespace std::chrono;
  const auto end = after + horizon;
  // Whole minutes in UTC are whole minutes in every local time of whole-minute offsets
  // (all in use today), so stepping by minutes and hours stays on minute boundaries.
  auto m = time_point_cast<minutes>(after) + minutes(1);
  while (m <= end) {
    const std::time_t tt = system_clock::to_time_t(m);
    std::tm local{};
    localtime_r(&tt, &local);
    if (!dayMatches(local) || !hour_.test(static_cast<size_t>(local.tm_hour))) {
      m += minutes(60 - local.tm_min);  // the next hour may match
      continue;
    }
    if (minute_.test(static_cast<size_t>(local.tm_min)))
      return time_point_cast<system_clock::duration>(m);
    m += minutes(1);
  }
  return std::nullopt;
}

std::optional<std::chrono::system_clock::time_point> windowStart(
    const CronSchedule& schedule, std::chrono::system_clock::time_point now, Duration duration) {
  using namespace std::chrono;
  const auto limit = std::min<int64_t>(duration_cast<minutes>(duration).count(), 8 * 24 * 60);
  const auto this_minute = time_point_cast<minutes>(now);
  // A window of duration d that opened at minute m covers [m, m + d).
  for (int64_t back = 0; back <= limit; ++back) {
    const auto m = this_minute - minutes(back);
    if (now - m >= duration) break;
    const std::time_t tt = system_clock::to_time_t(m);
    std::tm local{};
    localtime_r(&tt, &local);
    if (schedule.matches(local)) return m;
  }
  return std::nullopt;
}

}  // namespace dbpulse
