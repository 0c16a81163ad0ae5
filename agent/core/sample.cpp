#include "agent/core/sample.h"

namespace dbpulse {

void SampleBatch::describe(std::string_view name, MetricType type, std::string_view help,
                           bool exported) {
  if (families_.find(name) != families_.end()) return;
  families_.emplace(std::string(name), FamilyInfo{type, std::string(help), exported});
}

void SampleBatch::add(std::string_view name, Labels labels, double value) {
  samples_.push_back(Sample{std::string(name), std::move(labels), value});
}

}  // namespace dbpulse
