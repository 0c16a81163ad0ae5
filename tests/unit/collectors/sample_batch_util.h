#pragma once
// Reading a collector's SampleBatch in unit tests.

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "agent/core/sample.h"

namespace dbpulse::collectors::batchtest {

// The value of name{labels} (exactly that label set) in `b`, nullopt when absent. A series
// reported twice is a test failure: the store would keep only one of them.
inline std::optional<double> value(const SampleBatch& b, const std::string& name,
                                   const Labels& labels = {}) {
  std::optional<double> found;
  for (const auto& s : b.samples()) {
    if (s.name == name && s.labels == labels) {
      EXPECT_FALSE(found.has_value()) << "duplicate series " << name;
      found = s.value;
    }
  }
  return found;
}

// How many series of family `name` are in `b`.
inline size_t countOf(const SampleBatch& b, const std::string& name) {
  size_t n = 0;
  for (const auto& s : b.samples()) n += s.name == name;
  return n;
}

}  // namespace dbpulse::collectors::batchtest
