#include "exporters/prometheus/exposition.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>
#include <zlib.h>

#include <new>
#include <sstream>
#include <stdexcept>

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
        case MetricType::kGauge:
          mf.type = prometheus::MetricType::Gauge;
          break;
        case MetricType::kCounter:
          mf.type = prometheus::MetricType::Counter;
          break;
        case MetricType::kUntyped:
          mf.type = prometheus::MetricType::Untyped;
          break;
      }
      mf.metric.reserve(fam.series.size());
      for (const auto& s : fam.series) {
        prometheus::ClientMetric m;
        m.label.reserve(s.labels.size());
        for (const auto& l : s.labels.items()) m.label.push_back({l.name, l.value});
        switch (fam.type) {
          case MetricType::kGauge:
            m.gauge.value = s.value;
            break;
          case MetricType::kCounter:
            m.counter.value = s.value;
            if (carriesTimestamp(s)) m.timestamp_ms = s.t_ms;
            break;
          case MetricType::kUntyped:
            m.untyped.value = s.value;
            break;
        }
        mf.metric.push_back(std::move(m));
      }
      out.push_back(std::move(mf));
    }
    return out;
  }

 private:
  // A counter carries the time its collector read it, so that rate() and irate() see each
  // increase at the moment it was measured, whatever the scrape interval: without it a
  // 1 s scrape over a 15 s collector stores 14 flat samples and one jump. Only while its
  // writer keeps its promise to renew it (SnapshotSeries::renew_ms), and only for writers
  // that renew within kTimestampedRenewMaxMs: an event-driven counter (maintenance runs,
  // leader changes) or one of a collector that is late, backed off or switched off would
  // otherwise give Prometheus one sample for a long time — invisible past its 5-minute
  // lookback, and increase() needs two. Those keep the scrape's time, as gauges always
  // do: Prometheus keeps staleness markers (a vanished series ends at once) only for
  // samples without timestamps.
  bool carriesTimestamp(const SnapshotSeries& s) const {
    if (s.t_ms <= 0 || s.renew_ms <= 0 || s.renew_ms > kTimestampedRenewMaxMs) return false;
    const int64_t age = snapshot_.built_ms - s.t_ms;
    return snapshot_.built_ms > 0 && age >= 0 && age <= s.renew_ms;
  }

  const Snapshot& snapshot_;
};

}  // namespace

std::string renderText(const Snapshot& snapshot) {
  SnapshotCollectable collectable(snapshot);
  std::ostringstream os;
  prometheus::TextSerializer().Serialize(os, collectable.Collect());
  return std::move(os).str();
}

std::string gzipCompress(const std::string& data) {
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::bad_alloc();  // the only way deflateInit2 fails with these arguments
  }
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);  // deflateBound leaves room for all of it
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip: deflate did not finish");
  return out;
}

void Exposition::refresh() {
  auto snap = store_.snapshot();
  if (!cached_ || cached_version_ != snap->version) {
    cached_ = std::make_shared<const std::string>(renderText(*snap));
    cached_gzip_.reset();
    cached_version_ = snap->version;
  }
}

std::shared_ptr<const std::string> Exposition::render() {
  MutexLock lock(mu_);
  refresh();
  return cached_;
}

std::shared_ptr<const std::string> Exposition::renderGzip() {
  MutexLock lock(mu_);
  refresh();
  if (!cached_gzip_) cached_gzip_ = std::make_shared<const std::string>(gzipCompress(*cached_));
  return cached_gzip_;
}

}  // namespace dbpulse::exporters
