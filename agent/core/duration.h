#pragma once
// Durations as operators write them: "250ms", "15s", "5m", "1h", "1h30m".

#include <chrono>
#include <string>
#include <string_view>

#include "agent/core/status.h"

namespace dbpulse {

using Duration = std::chrono::milliseconds;

// Accepts one or more <integer><unit> groups with units ms, s, m, h, d (no sign,
// no spaces, no bare numbers). Errors say what was expected.
Result<Duration> parseDuration(std::string_view text);

// Shortest exact spelling: 1500ms -> "1500ms", 90s -> "90s", 3600s -> "1h".
std::string formatDuration(Duration d);

}  // namespace dbpulse
