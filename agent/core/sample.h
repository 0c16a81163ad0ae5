#pragma once
// What collectors produce: a batch of samples plus the type and help of each
// metric family, written into the SampleStore after every run.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/labels.h"

namespace dbpulse {

enum class MetricType { kGauge, kCounter, kUntyped };

struct FamilyInfo {
  MetricType type = MetricType::kUntyped;
  std::string help;
  // false keeps the family's series for rules and the admin API but off /metrics
  // (e.g. the chat server's own series, which Prometheus scrapes from it directly).
  bool exported = true;
};

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

// Filled by one collector run on one thread; not thread-safe.
class SampleBatch {
 public:
  // Declares a family's type and help; the first declaration wins. `exported` = false
  // keeps the family off /metrics (see FamilyInfo::exported).
  void describe(std::string_view name, MetricType type, std::string_view help,
                bool exported = true);
  void add(std::string_view name, Labels labels, double value);

  // describe() + add() in one call, the usual way collectors report.
  void gauge(std::string_view name, std::string_view help, Labels labels, double value) {
    describe(name, MetricType::kGauge, help);
    add(name, std::move(labels), value);
  }
  void counter(std::string_view name, std::string_view help, Labels labels, double value) {
    describe(name, MetricType::kCounter, help);
    add(name, std::move(labels), value);
  }

  const std::vector<Sample>& samples() const { return samples_; }
  const std::map<std::string, FamilyInfo, std::less<>>& families() const { return families_; }
  bool empty() const { return samples_.empty(); }
  void clear() {
    samples_.clear();
    families_.clear();
  }

 private:
  std::vector<Sample> samples_;
  std::map<std::string, FamilyInfo, std::less<>> families_;
};

}  // namespace dbpulse
