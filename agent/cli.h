#pragma once
// The one-shot commands of the dbpulse binary (main.cpp parses the command line): they
// build what they need from the config, run once and return the process exit code.

#include <iosfwd>

#include "agent/config.h"

namespace dbpulse {

enum class OutputFormat { kPrometheus, kJson };

// `dbpulse once`: runs every enabled collector once and prints the samples.
// Returns 0 when every collector succeeded or is switched off by a missing prerequisite
// (logged as a warning), 1 when one failed.
int runOnceCommand(const Config& config, OutputFormat format, std::ostream& out);

// `dbpulse suggest-indexes`: the index advisor once; progress on `err`. Exit code 0, or 1
// when the advisor could not run (the reason on `err`).
int suggestIndexesCommand(const Config& config, bool json, std::ostream& out, std::ostream& err);

}  // namespace dbpulse
