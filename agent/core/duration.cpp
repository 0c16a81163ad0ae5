#include "agent/core/duration.h"

#include <cstdint>

namespace dbpulse {

Result<Duration> parseDuration(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return invalidArgument("invalid duration \"" + std::string(text) + "\": " + why +
                           " (expected e.g. \"250ms\", \"15s\", \"5m\", \"1h\")");
  };
  if (text.empty()) return bad("empty");
  int64_t total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9')
      return bad("expected a number at position " + std::to_string(i + 1));
    int64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, text[i] - '0', &n)) {
        return bad("too large");
      }
      ++i;
    }
    size_t unit_start = i;
    while (i < text.size() &&
           ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= 'A' && text[i] <= 'Z')))
      ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    int64_t scale = 0;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else if (unit == "d")
      scale = 86'400'000;
    else if (unit.empty())
      return bad("missing unit");
    else
      return bad("unknown unit \"" + std::string(unit) + "\"");
    int64_t group_ms = 0;
    if (__builtin_mul_overflow(n, scale, &group_ms) ||
        __builtin_add_overflow(total_ms, group_ms, &total_ms)) {
      return bad("too large");
    }
  }
  return Duration(total_ms);
}

std::string formatDuration(Duration d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  struct Unit {
    int64_t scale;
    const char* name;
  };
  static constexpr Unit kUnits[] = {{3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& u : kUnits) {
    if (ms % u.scale == 0) return std::to_string(ms / u.scale) + u.name;
  }
  return std::to_string(ms) + "ms";
}

}  // namespace dbpulse
