#include "agent/core/sample_store.h"

#include <algorithm>
#include <map>

namespace dbpulse {

size_t Snapshot::seriesCount() const {
  size_t n = 0;
  for (const auto& f : families) n += f.series.size();
  return n;
}

const SnapshotFamily* Snapshot::family(std::string_view name) const {
  auto it =
      std::lower_bound(families.begin(), families.end(), name,
                       [](const SnapshotFamily& f, std::string_view n) { return f.name < n; });
  return it != families.end() && it->name == name ? &*it : nullptr;
}

SampleStore::SampleStore(const Clock& clock, SampleStoreOptions options)
    : clock_(clock), options_(options) {
  // A store without history would make rate() impossible; one point is the floor.
  options_.history_points = std::max<size_t>(options_.history_points, 1);
}

std::string SampleStore::key(std::string_view name, const Labels& labels) {
  std::string k(name);
  labels.appendKey(k);
  return k;
}

void SampleStore::write(std::string_view source, const SampleBatch& batch,
                        std::chrono::milliseconds staleness, bool exported,
                        std::chrono::milliseconds renew_within) {
  MutexLock lock(mu_);
  writeLocked(source, batch, staleness, exported, renew_within, 0);
}

void SampleStore::writeLocked(std::string_view source, const SampleBatch& batch,
                              std::chrono::milliseconds staleness, bool exported,
                              std::chrono::milliseconds renew_within, int64_t at_ms) {
  const int64_t now_ms = at_ms != 0 ? at_ms : toMillis(clock_.now());
  const int64_t expires_ms = now_ms + staleness.count();
  const int64_t renew_ms =
      renew_within.count() > 0 ? std::min(renew_within, staleness).count() : staleness.count();
  ++write_seq_;
  for (const auto& [name, info] : batch.families()) {
    families_.insert_or_assign(name, info);
  }
  for (const auto& s : batch.samples()) {
    auto [it, inserted] = series_.try_emplace(key(s.name, s.labels));
    Series& series = it->second;
    if (inserted) {
      series.name = s.name;
      series.labels = s.labels;
      by_name_[series.name].insert(&series);
      series.ring.reserve(std::min<size_t>(options_.history_points, 8));
    }
    if (inserted || series.source != source) {
      if (!inserted) unindexSourceLocked(series);
      series.source = source;
      by_source_[series.source].insert(&series);
    }
    series.written_seq = write_seq_;
    series.value = s.value;
    series.last_ms = now_ms;
    series.expires_ms = expires_ms;
    series.renew_ms = renew_ms;
    const auto family = batch.families().find(s.name);
    series.exported = exported && (family == batch.families().end() || family->second.exported);
    appendPoint(series, Point{now_ms, s.value});
  }
  next_expiry_ms_ = std::min(next_expiry_ms_, expires_ms);
  ++version_;
}

void SampleStore::appendPoint(Series& series, Point p) const {
  std::vector<Point>& ring = series.ring;
  const size_t n = ring.size();
  // ring[head] is the oldest point (head is 0 until the ring wraps).
  const bool oldest_out_of_window =
      options_.history_ms > 0 && n > 0 && ring[series.head].t_ms < p.t_ms - options_.history_ms;
  if (n < options_.history_points && !oldest_out_of_window) {
    if (series.head != 0) {
      // Grows again after wrapping (a series written faster than before): oldest first.
      std::rotate(ring.begin(), ring.begin() + static_cast<std::ptrdiff_t>(series.head),
                  ring.end());
      series.head = 0;
    }
    ring.push_back(p);
  } else {
    ring[series.head] = p;
    series.head = (series.head + 1) % n;
  }
}

void SampleStore::dropSource(std::string_view source) {
  MutexLock lock(mu_);
  eraseSourceLocked(source, 0);
  ++version_;
}

size_t SampleStore::eraseSourceLocked(std::string_view source, uint64_t keep_seq) {
  auto it = by_source_.find(std::string(source));
  if (it == by_source_.end()) return 0;
  std::vector<std::string> doomed;
  for (const Series* s : it->second) {
    if (keep_seq == 0 || s->written_seq != keep_seq) doomed.push_back(key(s->name, s->labels));
  }
  for (const auto& k : doomed) {
    auto sit = series_.find(k);
    unindexLocked(sit->second);
    series_.erase(sit);
  }
  return doomed.size();
}

void SampleStore::replace(std::string_view source, const SampleBatch& batch,
                          std::chrono::milliseconds staleness, bool exported, int64_t at_ms) {
  MutexLock lock(mu_);
  writeLocked(source, batch, staleness, exported, std::chrono::milliseconds(0), at_ms);
  eraseSourceLocked(source, write_seq_);  // what this write did not touch
}

void SampleStore::unindexLocked(const Series& series) const {
  auto it = by_name_.find(series.name);
  if (it != by_name_.end()) {
    it->second.erase(&series);
    if (it->second.empty()) by_name_.erase(it);
  }
  unindexSourceLocked(series);
}

void SampleStore::unindexSourceLocked(const Series& series) const {
  auto it = by_source_.find(series.source);
  if (it == by_source_.end()) return;
  it->second.erase(&series);
  if (it->second.empty()) by_source_.erase(it);
}

void SampleStore::expireLocked(int64_t now_ms) const {
  if (now_ms < next_expiry_ms_) return;
  int64_t next = INT64_MAX;
  size_t removed = std::erase_if(series_, [&](const auto& kv) REQUIRES(mu_) {
    if (kv.second.expires_ms <= now_ms) {
      unindexLocked(kv.second);
      return true;
    }
    next = std::min(next, kv.second.expires_ms);
    return false;
  });
  next_expiry_ms_ = next;
  if (removed > 0) ++version_;
}

std::shared_ptr<const Snapshot> SampleStore::snapshot() const {
  MutexLock lock(mu_);
  const int64_t now_ms = toMillis(clock_.now());
  expireLocked(now_ms);
  if (cached_ && cached_->version == version_) return cached_;

  std::map<std::string_view, std::vector<const Series*>> by_family;
  for (const auto& [k, s] : series_) {
    if (s.exported) by_family[s.name].push_back(&s);
  }
  auto snap = std::make_shared<Snapshot>();
  snap->version = version_;
  snap->built_ms = now_ms;
  snap->families.reserve(by_family.size());
  for (auto& [name, list] : by_family) {
    SnapshotFamily fam;
    fam.name = std::string(name);
    if (auto it = families_.find(fam.name); it != families_.end()) {
      fam.type = it->second.type;
      fam.help = it->second.help;
    }
    std::sort(list.begin(), list.end(), [](const Series* a, const Series* b) {
      return a->labels.items() < b->labels.items();
    });
    fam.series.reserve(list.size());
    for (const Series* s : list)
      fam.series.push_back(SnapshotSeries{s->labels, s->value, s->last_ms, s->renew_ms});
    snap->families.push_back(std::move(fam));
  }
  cached_ = std::move(snap);
  return cached_;
}

std::vector<Point> SampleStore::history(std::string_view name, const Labels& labels,
                                        int64_t since_ms) const {
  MutexLock lock(mu_);
  expireLocked(toMillis(clock_.now()));
  std::vector<Point> out;
  auto it = series_.find(key(name, labels));
  if (it == series_.end()) return out;
  const Series& s = it->second;
  const size_t n = s.ring.size();
  for (size_t i = 0; i < n; ++i) {
    const Point& p = s.ring[(s.head + i) % n];
    if (p.t_ms >= since_ms) out.push_back(p);
  }
  return out;
}

void SampleStore::visit(std::string_view name, int64_t since_ms, const SeriesVisitor& fn) const {
  MutexLock lock(mu_);
  expireLocked(toMillis(clock_.now()));
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) return;
  std::vector<Point> scratch;
  for (const Series* s : it->second) {
    // The ring holds ring[head..n) then ring[0..head) in time order (head is 0 until it
    // wraps). Walk back from the newest point to the first one before since_ms; pass the
    // points in place when they are contiguous.
    const std::vector<Point>& ring = s->ring;
    const size_t n = ring.size();
    const size_t head = s->head;
    size_t newer = head;  // ring[newer..head) are wanted
    while (newer > 0 && ring[newer - 1].t_ms >= since_ms) --newer;
    size_t older = n;  // ring[older..n) are wanted too (only when all of [0..head) are)
    if (newer == 0) {
      while (older > head && ring[older - 1].t_ms >= since_ms) --older;
    }
    if (older == n) {
      fn(s->labels, head > newer ? ring.data() + newer : nullptr, head - newer);
    } else if (head == 0) {
      fn(s->labels, ring.data() + older, n - older);
    } else {
      scratch.assign(ring.begin() + static_cast<std::ptrdiff_t>(older), ring.end());
      scratch.insert(scratch.end(), ring.begin(), ring.begin() + static_cast<std::ptrdiff_t>(head));
      fn(s->labels, scratch.data(), scratch.size());
    }
  }
}

std::vector<std::string> SampleStore::names() const {
  MutexLock lock(mu_);
  expireLocked(toMillis(clock_.now()));
  std::vector<std::string> out;
  out.reserve(by_name_.size());
  for (const auto& [name, list] : by_name_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

size_t SampleStore::seriesCount() const {
  MutexLock lock(mu_);
  return series_.size();
}

}  // namespace dbpulse
