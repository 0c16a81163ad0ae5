#pragma once
// Process-wide logging setup (spdlog's default logger, to stderr): the one
// global the agent keeps. One line per event, as JSON or text.

#include <string>

#include "agent/config.h"

namespace dbpulse {

// Installs the default logger. `level` is one of trace, debug, info, warn, error.
void setupLogging(LogFormat format, const std::string& level);

// Escapes a string for inclusion in a JSON string literal (without the quotes).
std::string jsonEscape(std::string_view s);

}  // namespace dbpulse
