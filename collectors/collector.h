#pragma once
// The collector interface. A collector answers one question about one system
// (PostgreSQL connections, process memory, ...) by producing samples.
//
// Threading: the scheduler never runs one collector concurrently with itself,
// but different collectors run on different pool threads at once. cancel() is
// the exception: it may be called from any thread while collect() runs.

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
};

}  // namespace dbpulse::collectors
