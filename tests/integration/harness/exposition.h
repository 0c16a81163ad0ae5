#pragma once
// Reading Prometheus text exposition (what GET /metrics and `dbpulse once` print) in tests.
// A tolerant reader for assertions, not a validator: `promtool check metrics` is the
// validator (see the e2e tests).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dbpulse::testing {

using LabelMap = std::map<std::string, std::string>;

struct ExpositionSample {
  std::string name;
  LabelMap labels;
  double value = 0;
};

// Every sample line (comments and blank lines skipped; malformed lines skipped too).
// Values: decimal, "NaN", "+Inf", "-Inf". A trailing timestamp is ignored.
std::vector<ExpositionSample> parseExposition(std::string_view text);

// Samples named exactly `name` whose labels include every pair in `matchers`.
std::vector<ExpositionSample> findSamples(std::string_view text, std::string_view name,
                                          const LabelMap& matchers = {});

// The value of the first such sample, or nullopt when there is none.
//   sampleValue(text, "pg_up")
//   sampleValue(text, "dbpulse_process_resident_memory_bytes", {{"process", "dbpulse"}})
std::optional<double> sampleValue(std::string_view text, std::string_view name,
                                  const LabelMap& matchers = {});

}  // namespace dbpulse::testing
