#pragma once
// The collector interface. A collector answers one question about one system
// (PostgreSQL connections, process memory, ...) by producing samples.
//
// Threading: the scheduler never runs one collector concurrently with itself,
// but different collectors run on different pool threads at once. cancel() is
// the exception: it may be called from any thread while collect() runs.

#include <any>
#include <chrono>
#include <stop_token>
#include <string>

#include "agent/core/clock.h"
#include "agent/core/sample.h"
#include "agent/core/status.h"

namespace dbpulse::collectors {

struct CollectContext {
  WallTime now;                                    // the run's nominal time
  std::chrono::steady_clock::time_point deadline;  // the run's timeout
  std::stop_token stop;                            // set on shutdown
};

// What a collector found on its last run beyond its samples (statement texts, blocked
// sessions, sizes), for the admin API and the status page; they find it by collector name
// (Pipeline::details). Thread-safe: called from HTTP threads while collect() runs.
class DetailsProvider {
 public:
  virtual ~DetailsProvider() = default;
  // A copy of the latest details, of the type the collector's header names.
  virtual std::any details() const = 0;
};

class Collector {
 public:
  virtual ~Collector() = default;

  // The catalogue name ("connections", "process", ...), used as the `collector` label.
  virtual const std::string& name() const = 0;

  // Runs once. Samples go to `out` even on failure (e.g. pg_up 0 with an error):
  // the scheduler writes whatever is in `out`, then records the Status.
  virtual Status collect(const CollectContext& ctx, SampleBatch& out) = 0;

  // Aborts in-flight I/O so collect() returns soon. Thread-safe: called from another
  // thread, possibly while collect() runs, just after it returned, or not at all.
  // Must not block: it only asks (sets a flag, wakes a poll, hands a PQcancel to a
  // helper thread) and returns; work that may wait on a server happens elsewhere. It
  // ends only this collector's run, never another collector's (on a shared session,
  // cancel through a PgCaller).
  virtual void cancel() {}

  // Its details for the admin API, when it keeps any; null otherwise.
  virtual const DetailsProvider* detailsProvider() const { return nullptr; }
};

}  // namespace dbpulse::collectors
