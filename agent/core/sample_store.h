#pragma once
// SampleStore: the latest value and a short history of every series, written by
// collectors (through the scheduler) and read by /metrics, the rule engine and
// the admin API. Thread-safe: any thread may call any method.
//
// Staleness: every write carries a staleness period; a series that is not
// written again within it disappears from snapshots (and its history is freed).
// A collector that stops reporting a series (table dropped, server down) thus
// loses it after one staleness period, not at once, so one slow run does not
// make series flicker.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/mutex.h"
#include "agent/core/sample.h"

namespace dbpulse {

struct Point {
  int64_t t_ms = 0;
  double value = 0;
};

struct SnapshotSeries {
  Labels labels;
  double value = 0;
  int64_t t_ms = 0;  // when the value was written
  // How soon after t_ms its writer promised to write it again (0: unknown).
  int64_t renew_ms = 0;
};

struct SnapshotFamily {
  std::string name;
  MetricType type = MetricType::kUntyped;
  std::string help;
  std::vector<SnapshotSeries> series;  // sorted by labels
};

// An immutable view of the latest values; families sorted by name. Shared by readers.
struct Snapshot {
  uint64_t version = 0;
  int64_t built_ms = 0;  // the store's clock when the snapshot was built (0: not a store's)
  std::vector<SnapshotFamily> families;
  size_t seriesCount() const;
  // nullptr when absent.
  const SnapshotFamily* family(std::string_view name) const;
};

struct SampleStoreOptions {
  size_t history_points = 40;  // per series ring buffer capacity
  // When > 0, a series keeps only the points of the last history_ms (up to history_points):
  // its ring stops growing once its oldest point is that old, so a series written every 15 s
  // holds history_ms / 15 s points while one written every second may hold up to the cap.
  int64_t history_ms = 0;
};

class SampleStore {
 public:
  SampleStore(const Clock& clock, SampleStoreOptions options = {});
  SampleStore(const SampleStore&) = delete;
  SampleStore& operator=(const SampleStore&) = delete;

  // Writes every sample of `batch` at the clock's current time. `source` names the
  // writer (a collector); `staleness` is how long the series live without a new write.
  // `exported` = false keeps the series for rules and the admin API but out of /metrics;
  // a series is exported iff `exported` and its family's FamilyInfo::exported (undescribed
  // families count as exported).
  // `renew_within` is how soon the writer writes these series again when all goes well
  // (a collector: its interval plus timeout), if sooner than `staleness` (0: staleness).
  void write(std::string_view source, const SampleBatch& batch, std::chrono::milliseconds staleness,
             bool exported = true,
             std::chrono::milliseconds renew_within = std::chrono::milliseconds(0));

  // write(), then drops every series of `source` that `batch` did not contain: for writers
  // whose output is the complete current set (rule results, ALERTS), where a series that is
  // no longer produced must vanish at once rather than after its staleness.
  // `at_ms` (when not 0) stamps the samples with that time instead of the clock's: the
  // rule engine writes at its evaluation time, as Prometheus does, so a rule evaluated at
  // that same instant sees what a recording rule before it wrote.
  void replace(std::string_view source, const SampleBatch& batch,
               std::chrono::milliseconds staleness, bool exported = true, int64_t at_ms = 0);

  // Drops every series written by `source` (a collector removed by a reload).
  void dropSource(std::string_view source);

  // The latest exported values. Cheap when nothing changed since the previous call.
  std::shared_ptr<const Snapshot> snapshot() const;

  // History of one series, oldest first, points with t_ms >= since_ms.
  std::vector<Point> history(std::string_view name, const Labels& labels, int64_t since_ms) const;

  size_t seriesCount() const;

  // The rule engine's read access. Calls `fn` once per live series named `name`, exported
  // or not, with its labels (without the name) and its history points with
  // t_ms >= since_ms, oldest first (`n` may be 0). `fn` runs under the store's lock: it
  // must be quick and must not call the store; `points` is valid only during the call.
  using SeriesVisitor = std::function<void(const Labels& labels, const Point* points, size_t n)>;
  void visit(std::string_view name, int64_t since_ms, const SeriesVisitor& fn) const;

  // The names of all live series, exported or not, sorted (for {__name__=~"..."}).
  std::vector<std::string> names() const;

 private:
  struct Series {
    std::string name;
    Labels labels;
    std::string source;
    double value = 0;
    int64_t last_ms = 0;
    int64_t expires_ms = 0;
    int64_t renew_ms = 0;
    bool exported = true;
    uint64_t written_seq = 0;  // the write() that last wrote it
    std::vector<Point> ring;   // grows to history_points (or history_ms), then wraps at head
    size_t head = 0;
  };

  static std::string key(std::string_view name, const Labels& labels);
  // The *Locked functions need mu_.
  void expireLocked(int64_t now_ms) const REQUIRES(mu_);
  void unindexLocked(const Series& series) const REQUIRES(mu_);  // from by_name_, by_source_
  void unindexSourceLocked(const Series& series) const REQUIRES(mu_);
  void appendPoint(Series& series, Point p) const;
  void writeLocked(std::string_view source, const SampleBatch& batch,
                   std::chrono::milliseconds staleness, bool exported,
                   std::chrono::milliseconds renew_within, int64_t at_ms) REQUIRES(mu_);
  // Erases the series of `source` not written by write number `keep_seq` (all when 0);
  // returns how many.
  size_t eraseSourceLocked(std::string_view source, uint64_t keep_seq) REQUIRES(mu_);

  const Clock& clock_;
  SampleStoreOptions options_;
  mutable Mutex mu_;
  // mutable: expiry happens lazily in readers; it only removes series past their staleness.
  mutable std::unordered_map<std::string, Series> series_ GUARDED_BY(mu_);
  // name -> its series (pointers into series_, whose nodes never move): rules select by name.
  mutable std::unordered_map<std::string, std::unordered_set<const Series*>> by_name_
      GUARDED_BY(mu_);
  // source -> its series: dropSource() and replace() touch only the writer's own series.
  mutable std::unordered_map<std::string, std::unordered_set<const Series*>> by_source_
      GUARDED_BY(mu_);
  std::unordered_map<std::string, FamilyInfo> families_ GUARDED_BY(mu_);
  mutable uint64_t version_ GUARDED_BY(mu_) = 1;
  uint64_t write_seq_ GUARDED_BY(mu_) = 0;  // counts writes, for replace()
  mutable int64_t next_expiry_ms_ GUARDED_BY(mu_) = INT64_MAX;
  mutable std::shared_ptr<const Snapshot> cached_ GUARDED_BY(mu_);
};

}  // namespace dbpulse
