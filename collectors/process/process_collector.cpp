#include "collectors/process/process_collector.h"

#include <unistd.h>

#include <exception>
#include <optional>
#include <string_view>
#include <utility>

namespace dbpulse::collectors {
namespace {

// Every series this collector reports, in one place.
constexpr std::string_view kUp = "dbpulse_process_up";
constexpr std::string_view kUpHelp =
    "Whether the process was found and its /proc entries read (1) or not (0).";
constexpr std::string_view kRss = "dbpulse_process_resident_memory_bytes";
constexpr std::string_view kRssHelp = "Resident set size (VmRSS) in bytes.";
constexpr std::string_view kHwm = "dbpulse_process_resident_memory_max_bytes";
constexpr std::string_view kHwmHelp = "Peak resident set size (VmHWM) in bytes.";
constexpr std::string_view kPss = "dbpulse_process_proportional_memory_bytes";
constexpr std::string_view kPssHelp = "Proportional set size (Pss from smaps_rollup) in bytes.";
constexpr std::string_view kCpu = "dbpulse_process_cpu_seconds_total";
constexpr std::string_view kCpuHelp = "User plus system CPU time consumed, in seconds.";
constexpr std::string_view kThreads = "dbpulse_process_threads";
constexpr std::string_view kThreadsHelp = "Number of threads.";
constexpr std::string_view kOpenFds = "dbpulse_process_open_fds";
constexpr std::string_view kOpenFdsHelp = "Number of open file descriptors.";
constexpr std::string_view kMaxFds = "dbpulse_process_max_fds";
constexpr std::string_view kMaxFdsHelp = "Soft limit on open file descriptors.";
constexpr std::string_view kStart = "dbpulse_process_start_time_seconds";
constexpr std::string_view kStartHelp = "Process start time, in seconds since the Unix epoch.";
constexpr std::string_view kCgMem = "dbpulse_cgroup_memory_usage_bytes";
constexpr std::string_view kCgMemHelp =
    "Memory used by dbpulse's cgroup (memory.current) in bytes.";
constexpr std::string_view kCgLimit = "dbpulse_cgroup_memory_limit_bytes";
constexpr std::string_view kCgLimitHelp = "Memory limit of dbpulse's cgroup (memory.max) in bytes.";
constexpr std::string_view kCgCpu = "dbpulse_cgroup_cpu_seconds_total";
constexpr std::string_view kCgCpuHelp = "CPU time consumed by dbpulse's cgroup, in seconds.";

constexpr std::string_view kSelfLabel = "dbpulse";
constexpr std::string_view kCompanionLabel = "companion";

double ticksPerSecond() {
  const long t = ::sysconf(_SC_CLK_TCK);
  // USER_HZ is 100 on every Linux ABI; sysconf failing is effectively impossible.
  return t > 0 ? static_cast<double>(t) : 100.0;
}

void reportProcess(std::string_view process, const proc::ProcessInfo& info, SampleBatch& out) {
  const Labels labels{{"process", process}};
  out.gauge(kUp, kUpHelp, labels, 1);
  if (info.status.resident_bytes) {
    out.gauge(kRss, kRssHelp, labels, static_cast<double>(*info.status.resident_bytes));
  }
  if (info.status.resident_max_bytes) {
    out.gauge(kHwm, kHwmHelp, labels, static_cast<double>(*info.status.resident_max_bytes));
  }
  if (info.pss_bytes) out.gauge(kPss, kPssHelp, labels, static_cast<double>(*info.pss_bytes));
  out.counter(kCpu, kCpuHelp, labels, info.cpu_seconds);
  if (info.status.threads) {
    out.gauge(kThreads, kThreadsHelp, labels, static_cast<double>(*info.status.threads));
  }
  if (info.open_fds) out.gauge(kOpenFds, kOpenFdsHelp, labels, static_cast<double>(*info.open_fds));
  if (info.max_fds) out.gauge(kMaxFds, kMaxFdsHelp, labels, static_cast<double>(*info.max_fds));
  if (info.start_time_seconds) out.gauge(kStart, kStartHelp, labels, *info.start_time_seconds);
}

// process-exporter's names, types and labels, for one group per process (groupname is
// the `process` label's value; num_procs is 1 while it runs, 0 when it is not found).
void reportNamedGroup(std::string_view group, const proc::ProcessInfo& info,
                      double ticks_per_second, SampleBatch& out) {
  const Labels labels{{"groupname", group}};
  out.gauge("namedprocess_namegroup_num_procs", "Processes in this group.", labels, 1);
  out.describe("namedprocess_namegroup_cpu_seconds_total", MetricType::kCounter,
               "CPU time consumed by the group, by mode (user, system).");
  out.add("namedprocess_namegroup_cpu_seconds_total",
          Labels{{"groupname", group}, {"mode", "user"}},
          static_cast<double>(info.stat.utime_ticks) / ticks_per_second);
  out.add("namedprocess_namegroup_cpu_seconds_total",
          Labels{{"groupname", group}, {"mode", "system"}},
          static_cast<double>(info.stat.stime_ticks) / ticks_per_second);
  out.describe("namedprocess_namegroup_memory_bytes", MetricType::kGauge,
               "Memory of the group by memtype: resident (VmRSS), virtual (VmSize), swapped "
               "(VmSwap), proportionalResident (Pss), proportionalSwapped (SwapPss).");
  const auto memory = [&](const char* memtype, const std::optional<int64_t>& bytes) {
    if (bytes) {
      out.add("namedprocess_namegroup_memory_bytes",
              Labels{{"groupname", group}, {"memtype", memtype}}, static_cast<double>(*bytes));
    }
  };
  memory("resident", info.status.resident_bytes);
  memory("virtual", info.status.virtual_bytes);
  memory("swapped", info.status.swapped_bytes);
  memory("proportionalResident", info.pss_bytes);
  memory("proportionalSwapped", info.swap_pss_bytes);
  if (info.status.threads) {
    out.gauge("namedprocess_namegroup_num_threads", "Threads in the group.", labels,
              static_cast<double>(*info.status.threads));
  }
  if (info.open_fds) {
    out.gauge("namedprocess_namegroup_open_filedesc", "Open file descriptors of the group.", labels,
              static_cast<double>(*info.open_fds));
    if (info.max_fds && *info.max_fds > 0) {
      out.gauge("namedprocess_namegroup_worst_fd_ratio",
                "Open file descriptors / their soft limit, the worst process of the group.", labels,
                static_cast<double>(*info.open_fds) / static_cast<double>(*info.max_fds));
    }
  }
  if (info.start_time_seconds) {
    out.gauge("namedprocess_namegroup_oldest_start_time_seconds",
              "Start time (Unix epoch) of the oldest process of the group.", labels,
              *info.start_time_seconds);
  }
  out.counter("namedprocess_namegroup_minor_page_faults_total", "Minor page faults of the group.",
              labels, static_cast<double>(info.stat.minor_faults));
  out.counter("namedprocess_namegroup_major_page_faults_total", "Major page faults of the group.",
              labels, static_cast<double>(info.stat.major_faults));
  if (info.status.voluntary_ctxt_switches && info.status.nonvoluntary_ctxt_switches) {
    out.describe("namedprocess_namegroup_context_switches_total", MetricType::kCounter,
                 "Context switches of the group, by ctxswitchtype (voluntary, nonvoluntary).");
    out.add("namedprocess_namegroup_context_switches_total",
            Labels{{"ctxswitchtype", "voluntary"}, {"groupname", group}},
            static_cast<double>(*info.status.voluntary_ctxt_switches));
    out.add("namedprocess_namegroup_context_switches_total",
            Labels{{"ctxswitchtype", "nonvoluntary"}, {"groupname", group}},
            static_cast<double>(*info.status.nonvoluntary_ctxt_switches));
  }
  if (info.io) {
    out.counter("namedprocess_namegroup_read_bytes_total",
                "Bytes the group caused to be read from storage.", labels,
                static_cast<double>(info.io->read_bytes));
    out.counter("namedprocess_namegroup_write_bytes_total",
                "Bytes the group caused to be written to storage.", labels,
                static_cast<double>(info.io->write_bytes));
  }
  // process-exporter's states: the process's state letter from /proc/PID/stat.
  const char state = info.stat.state;
  const char* current = state == 'R'   ? "Running"
                        : state == 'S' ? "Sleeping"
                        : state == 'D' ? "Waiting"
                        : state == 'Z' ? "Zombie"
                                       : "Other";
  out.describe("namedprocess_namegroup_states", MetricType::kGauge,
               "Processes of the group by state (Running, Sleeping, Waiting, Zombie, Other).");
  for (const char* name : {"Running", "Sleeping", "Waiting", "Zombie", "Other"}) {
    out.add("namedprocess_namegroup_states", Labels{{"groupname", group}, {"state", name}},
            std::string_view(name) == current ? 1 : 0);
  }
}

// process-exporter's per-thread series: the threads of the group by thread name.
void reportThreads(std::string_view group, const proc::ThreadsInfo& threads,
                   double ticks_per_second, SampleBatch& out) {
  out.describe("namedprocess_namegroup_thread_count", MetricType::kGauge,
               "Threads of the group with this thread name.");
  out.describe("namedprocess_namegroup_thread_cpu_seconds_total", MetricType::kCounter,
               "CPU time of the group's threads with this name, by mode (user, system).");
  out.describe("namedprocess_namegroup_thread_minor_page_faults_total", MetricType::kCounter,
               "Minor page faults of the group's threads with this name.");
  out.describe("namedprocess_namegroup_thread_major_page_faults_total", MetricType::kCounter,
               "Major page faults of the group's threads with this name.");
  out.describe("namedprocess_namegroup_thread_context_switches_total", MetricType::kCounter,
               "Context switches of the group's threads with this name, by ctxswitchtype.");
  for (const proc::ThreadGroup& t : threads.groups) {
    const Labels labels{{"groupname", group}, {"threadname", t.name}};
    out.add("namedprocess_namegroup_thread_count", labels, static_cast<double>(t.count));
    for (const auto& [mode, ticks] :
         {std::pair{"user", t.utime_ticks}, std::pair{"system", t.stime_ticks}}) {
      out.add("namedprocess_namegroup_thread_cpu_seconds_total",
              Labels{{"groupname", group}, {"mode", mode}, {"threadname", t.name}},
              static_cast<double>(ticks) / ticks_per_second);
    }
    out.add("namedprocess_namegroup_thread_minor_page_faults_total", labels,
            static_cast<double>(t.minor_faults));
    out.add("namedprocess_namegroup_thread_major_page_faults_total", labels,
            static_cast<double>(t.major_faults));
    for (const auto& [type, n] : {std::pair{"voluntary", t.voluntary_ctxt_switches},
                                  std::pair{"nonvoluntary", t.nonvoluntary_ctxt_switches}}) {
      out.add("namedprocess_namegroup_thread_context_switches_total",
              Labels{{"ctxswitchtype", type}, {"groupname", group}, {"threadname", t.name}},
              static_cast<double>(n));
    }
    if (t.read_bytes && t.write_bytes) {
      out.describe("namedprocess_namegroup_thread_io_bytes_total", MetricType::kCounter,
                   "Bytes the group's threads with this name read or wrote, by iomode.");
      for (const auto& [mode, bytes] :
           {std::pair{"read", *t.read_bytes}, std::pair{"write", *t.write_bytes}}) {
        out.add("namedprocess_namegroup_thread_io_bytes_total",
                Labels{{"groupname", group}, {"iomode", mode}, {"threadname", t.name}},
                static_cast<double>(bytes));
      }
    }
  }
  out.describe("namedprocess_namegroup_threads_wchan", MetricType::kGauge,
               "Threads of the group by the kernel function they wait in (wchan).");
  for (const auto& [symbol, n] : threads.wchan) {
    out.add("namedprocess_namegroup_threads_wchan", Labels{{"groupname", group}, {"wchan", symbol}},
            static_cast<double>(n));
  }
}

void reportDown(std::string_view process, SampleBatch& out) {
  out.gauge(kUp, kUpHelp, Labels{{"process", process}}, 0);
  out.gauge("namedprocess_namegroup_num_procs", "Processes in this group.",
            Labels{{"groupname", process}}, 0);
}

}  // namespace

ProcessCollector::ProcessCollector(ProcessCollectorOptions options)
    : options_(std::move(options)),
      proc_(options_.proc_root),
      cgroupfs_(options_.cgroup_root),
      ticks_per_second_(ticksPerSecond()) {}

void ProcessCollector::cancel() {
  MutexLock lock(mu_);
  run_stop_.request_stop();
}

Status ProcessCollector::collect(const CollectContext& ctx, SampleBatch& out) {
  std::stop_source run_stop;
  {
    MutexLock lock(mu_);
    run_stop_ = run_stop;  // shares state: cancel() now stops this run
  }
  // Shutdown stops the run too. Only the /proc scan checks it: every other read is one
  // small procfs/cgroupfs file, which never blocks.
  std::stop_callback on_shutdown(ctx.stop, [&run_stop] { run_stop.request_stop(); });
  try {
    return collectOrThrow(run_stop.get_token(), out);
  } catch (const std::exception& e) {  // only std::bad_alloc is plausible
    return internalError(std::string("process: ") + e.what());
  }
}

Status ProcessCollector::collectOrThrow(std::stop_token stop, SampleBatch& out) {
  // btime is needed for start times only; without it those series are omitted.
  std::optional<int64_t> boot_time;
  if (auto text = proc_.readFile("stat"); text.ok()) {
    if (auto bt = proc::parseBootTime(*text); bt.ok()) boot_time = *bt;
  }

  Status result;
  // "self" rather than getpid(): correct even when the proc root is mounted from another
  // pid namespace, and a fake tree in tests can provide it as a symlink.
  if (auto self = proc::readProcess(proc_, "self", boot_time, ticks_per_second_); self.ok()) {
    reportProcess(kSelfLabel, *self, out);
    reportNamedGroup(kSelfLabel, *self, ticks_per_second_, out);
    if (auto threads = proc::readThreads(proc_, "self"); threads.ok()) {
      reportThreads(kSelfLabel, *threads, ticks_per_second_, out);
    }
  } else {
    reportDown(kSelfLabel, out);
    result = Status(self.status().code(),
                    "process: reading our own process: " + self.status().message());
  }

  if (companionConfigured()) {
    auto pid = findCompanion(stop);
    std::optional<proc::ProcessInfo> info;
    if (pid.ok()) {
      if (auto read = proc::readProcess(proc_, std::to_string(*pid), boot_time, ticks_per_second_);
          read.ok()) {
        info = std::move(*read);
      }
    }
    if (info) {
      reportProcess(kCompanionLabel, *info, out);
      reportNamedGroup(kCompanionLabel, *info, ticks_per_second_, out);
      if (auto threads = proc::readThreads(proc_, std::to_string(*pid)); threads.ok()) {
        reportThreads(kCompanionLabel, *threads, ticks_per_second_, out);
      }
    } else {
      reportDown(kCompanionLabel, out);
    }
    if (result.ok() && pid.status().code() == StatusCode::kCancelled) result = pid.status();
  }

  collectCgroup(out);
  return result;
}

bool ProcessCollector::companionConfigured() const {
  return !options_.companion_pid_file.empty() || !options_.companion_process_name.empty();
}

Result<pid_t> ProcessCollector::findCompanion(std::stop_token stop) const {
  const std::string& wanted = options_.companion_process_name;
  Status from_file = notFound("no companion pid file configured");
  if (!options_.companion_pid_file.empty()) {
    // Small cap: a pid file is a few bytes; anything larger is not a pid file.
    auto text = proc::readWholeFile(options_.companion_pid_file, 64);
    auto pid = text.ok() ? proc::parsePidFile(*text) : Result<pid_t>(text.status());
    if (pid.ok()) {
      const std::string dir = std::to_string(*pid);
      auto stat_text = proc_.readFile(dir + "/stat");
      auto stat =
          stat_text.ok() ? proc::parseStat(*stat_text) : Result<proc::StatInfo>(stat_text.status());
      // A pid file that outlived its server names nothing, a zombie, or — after pid
      // reuse — some other process; the name check catches the last when we have one.
      bool alive = stat.ok() && stat->state != 'Z' && stat->state != 'X';
      if (alive && !wanted.empty()) {
        auto comm = proc_.readFile(dir + "/comm", 256);
        auto cmdline = proc_.readFile(dir + "/cmdline", 4096 + 1);
        alive = proc::matchesProcessName(comm.ok() ? *comm : std::string(),
                                         cmdline.ok() ? *cmdline : std::string(), wanted);
      }
      if (alive) return *pid;
      from_file = notFound(options_.companion_pid_file + ": pid " + dir + " is not running");
    } else {
      from_file = pid.status();
    }
  }
  if (wanted.empty()) return from_file;
  return proc::findProcessByName(proc_, wanted, ::getpid(), std::move(stop));
}

void ProcessCollector::collectCgroup(SampleBatch& out) const {
  // Absent or unreadable cgroup v2 accounting (v1 host, no /sys/fs/cgroup in the
  // container, root cgroup) is normal, not an error of this collector: the series are
  // just not reported.
  auto text = proc_.readFile("self/cgroup");
  if (!text.ok()) return;
  auto path = proc::parseCgroupV2Path(*text);
  if (!path.ok()) return;
  auto info = proc::readCgroup(cgroupfs_, *path);
  if (!info.ok()) return;
  if (info->memory_usage_bytes) {
    out.gauge(kCgMem, kCgMemHelp, {}, static_cast<double>(*info->memory_usage_bytes));
  }
  if (info->memory_limit_bytes) {
    out.gauge(kCgLimit, kCgLimitHelp, {}, static_cast<double>(*info->memory_limit_bytes));
  }
  if (info->cpu_seconds) out.counter(kCgCpu, kCgCpuHelp, {}, *info->cpu_seconds);
}

}  // namespace dbpulse::collectors
