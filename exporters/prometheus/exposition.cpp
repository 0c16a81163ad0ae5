#include "exporters/prometheus/exposition.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <sstream>

#include "agent/core/sample_store.h"

namespace dbpulse::exporters {
namespace {

// A Collectable over one immutable snapshot: families are built from the
// snapshot on demand (not with Family::Add, since our series come and go).
class SnapshotCollectable final : public prometheus::Collectable {
 public:
  explicit SnapshotCollectable(const Snapshot& snapshot) : snapshot_(snapshot) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    out.reserve(snapshot_.families.size());
    for (const auto& fam : snapshot_.families) {
      prometheus::MetricFamily mf;
      mf.name = fam.name;
      mf.help = fam.help;
      switch (fam.type) {
        case MetricType::kGauge: mf.type = prometheus::MetricType::Gauge; break;
        case MetricType::kCounter: mf.type = prometheus::MetricType::Counter; break;
        case MetricType::kUntyped: mf.type = prometheus::MetricType::Untyped; break;
      }
      mf.metric.reserve(fam.series.size());
      for (const auto& s : fam.series) {
        prometheus::ClientMetric m;
        m.label.reserve(s.labels.size());
        for (const auto& l : s.labels.items()) m.label.push_back({l.name, l.value});
        switch (fam.type) {
          case MetricType::kGauge: m.gauge.value = s.value; break;
          case MetricType::kCounter: m.counter.value = s.value; break;
          case MetricType::kUntyped: m.untyped.value = s.value; break;
        }
        mf.metric.push_back(std::move(m));
      }
      out.push_back(std::move(mf));
    }
    return out;
  }

 private:
  const Snapshot& snapshot_;
};

}  // namespace

std::string renderText(const Snapshot& snapshot) {
  SnapshotCollectable collectable(snapshot);
  std::ostringstream os;
  prometheus::TextSerializer().Serialize(os, collectable.Collect());
  return std::move(os).str();
}

std::shared_ptr<const std::string> Exposition::render() {
  auto snap = store_.snapshot();
  std::lock_guard lock(mu_);
  if (!cached_ || cached_version_ != snap->version) {
    cached_ = std::make_shared<const std::string>(renderText(*snap));
    cached_version_ = snap->version;
  }
  return cached_;
}

}  // namespace dbpulse::exporters
