#pragma once
// Job: a unit of work the Scheduler runs on an interval — a collector's scrape, or the
// index advisor's hourly run. A collector is a job that answers a question with samples;
// the advisor is not a collector (it has no question of its own to answer, it publishes
// its answer to the admin routes and one gauge), so it is a job of its own.
//
// Threading: as for collectors (collectors/collector.h): the scheduler never runs one job
// concurrently with itself; cancel() may be called from another thread while run() runs
// and must not block.

#include <memory>
#include <string>

#include "agent/core/sample.h"
#include "agent/core/status.h"
#include "collectors/collector.h"

namespace dbpulse {

// The run's nominal time, deadline and stop token (the collectors' context).
using JobContext = collectors::CollectContext;

class Job {
 public:
  virtual ~Job() = default;
  // The `collector` label of the job's self-metrics and its name on the status page.
  virtual const std::string& name() const = 0;
  // Runs once. Samples go to `out` even on failure; the scheduler writes whatever is in
  // `out`, then records the Status.
  virtual Status run(const JobContext& ctx, SampleBatch& out) = 0;
  // Asks run() to return soon; never blocks (see collectors::Collector::cancel()).
  virtual void cancel() {}
};

// A collector scheduled as a job: run() is its collect().
std::unique_ptr<Job> collectorJob(std::unique_ptr<collectors::Collector> collector);

}  // namespace dbpulse
