#pragma once
// The `process` collector: memory, CPU, threads and file descriptors of dbpulse itself
// and of the companion chat server beside it, plus the cgroup v2 memory/CPU accounting of
// dbpulse's own cgroup (in a Kubernetes sidecar: its container). Linux only; reads procfs
// and cgroupfs, never runs commands.
//
// Series (all gauges unless marked; `process` is "dbpulse" or "companion"):
//   dbpulse_process_up{process}                      1 read, 0 configured but not found or
//                                                    unreadable (missing/stale pid file,
//                                                    no process by that name, zombie)
//   dbpulse_process_resident_memory_bytes{process}      VmRSS
//   dbpulse_process_resident_memory_max_bytes{process}  VmHWM (peak RSS)
//   dbpulse_process_proportional_memory_bytes{process}  Pss from smaps_rollup
//   dbpulse_process_cpu_seconds_total{process}          counter: user + system CPU time
//   dbpulse_process_threads{process}
//   dbpulse_process_open_fds{process}
//   dbpulse_process_max_fds{process}                    soft RLIMIT_NOFILE
//   dbpulse_process_start_time_seconds{process}         Unix epoch seconds
//   dbpulse_cgroup_memory_usage_bytes                   memory.current
//   dbpulse_cgroup_memory_limit_bytes                   memory.max
//   dbpulse_cgroup_cpu_seconds_total                    counter: cpu.stat usage_usec
// The same facts under process-exporter's names, types and labels, one group per process
// (groupname "dbpulse" / "companion"): namedprocess_namegroup_{num_procs, num_threads,
// cpu_seconds_total{mode}, memory_bytes{memtype}, open_filedesc, worst_fd_ratio,
// oldest_start_time_seconds, minor/major_page_faults_total, context_switches_total
// {ctxswitchtype}, read/write_bytes_total, states{state}}; num_procs 0 for a companion not
// found; and its per-thread series by thread name (thread_count, thread_cpu_seconds_total,
// thread_*_page_faults_total, thread_context_switches_total, thread_io_bytes_total,
// threads_wchan{wchan}) from PID/task/* (at most 64 names, 4096 threads).
// A series whose source is unreadable or absent is omitted, not reported as 0: Pss and
// open fds need ptrace-read access to the companion (same user or CAP_SYS_PTRACE); a
// max_fds of "unlimited" and a memory.max of "max" (no limit) are omitted rather than
// exported as +Inf; cgroup series are omitted on cgroup v1 hosts and at the root cgroup.
// Companion series appear only when a pid file or process name is configured.
//
// Finding the companion, every run (the chat server may restart with a new pid):
//   1. pid_file: the pid in it, if that process is alive and — when process_name is also
//      set — carries that name (guards against a stale file naming a reused pid);
//   2. otherwise process_name: the oldest process whose comm or argv[0] basename equals
//      it, never dbpulse itself.
//
// collect() returns OK whenever dbpulse's own /proc/self was read; a missing companion is
// visible only as dbpulse_process_up{process="companion"} 0 (nothing is logged here).
// It returns kCancelled if cancel() or shutdown interrupted the /proc scan, and the read
// error if /proc/self could not be read (then dbpulse_process_up{process="dbpulse"} is 0).
// No exception escapes collect().
//
// Threading: per the Collector contract; cancel() may be called from any thread.

#include <sys/types.h>

#include <mutex>
#include <stop_token>
#include <string>

#include "agent/core/mutex.h"
#include "collectors/collector.h"
#include "collectors/process/proc_reader.h"

namespace dbpulse::collectors {

struct ProcessCollectorOptions {
  std::string companion_pid_file;      // absolute path of the chat server's pid file; "" = none
  std::string companion_process_name;  // comm or argv[0] basename; "" = none
  std::string proc_root = "/proc";
  // Where the cgroup v2 hierarchy is mounted; on hybrid v1/v2 hosts that is usually
  // /sys/fs/cgroup/unified, where the memory controller is typically not enabled.
  std::string cgroup_root = "/sys/fs/cgroup";
};

class ProcessCollector final : public Collector {
 public:
  explicit ProcessCollector(ProcessCollectorOptions options);

  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;

 private:
  Status collectOrThrow(std::stop_token stop, SampleBatch& out);
  bool companionConfigured() const;
  // The companion's pid per the order above; kNotFound/kInvalidArgument/... otherwise.
  Result<pid_t> findCompanion(std::stop_token stop) const;
  void collectCgroup(SampleBatch& out) const;

  const std::string name_ = "process";
  const ProcessCollectorOptions options_;
  const proc::ProcFs proc_;
  const proc::ProcFs cgroupfs_;
  const double ticks_per_second_;  // sysconf(_SC_CLK_TCK), the unit of /proc/PID/stat times

  Mutex mu_;
  std::stop_source run_stop_ GUARDED_BY(mu_);  // the current run's, for cancel()
};

}  // namespace dbpulse::collectors
