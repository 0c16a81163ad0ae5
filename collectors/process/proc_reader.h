#pragma once
// Reading Linux process and cgroup v2 accounting: /proc/PID/{status,stat,smaps_rollup,
// limits,fd,comm,cmdline}, /proc/stat, /proc/self/cgroup and the cgroup's
// memory.current / memory.max / cpu.stat.
//
// Two layers:
//  * parse*() functions: pure, take the file's text, never touch the filesystem.
//    Malformed input yields kInvalidArgument naming the file and field; a field that is
//    simply absent (kernel threads have no VmRSS, old kernels no smaps_rollup) yields an
//    empty optional or kNotFound, as documented per function.
//  * ProcFs: the one narrow door to the filesystem, rooted at a directory so tests can
//    point it at a fake tree. readProcess() and findProcessByName() glue the two.
//
// Units: every byte value is bytes (the kernel's "kB" is KiB and is multiplied by 1024),
// CPU time is seconds, times are Unix epoch seconds.
// Threading: everything here is stateless or const; safe from any thread.
// No function throws on bad input or I/O errors (std::bad_alloc aside).

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"

namespace dbpulse::collectors::proc {

// ---- pure parsers ------------------------------------------------------------------

// /proc/PID/status. Each field is empty when its line is absent (kernel threads and
// zombies have no Vm* lines).
struct StatusInfo {
  std::optional<int64_t> resident_bytes;      // VmRSS
  std::optional<int64_t> resident_max_bytes;  // VmHWM (peak RSS)
  std::optional<int64_t> threads;             // Threads
  std::optional<int64_t> virtual_bytes;       // VmSize
  std::optional<int64_t> swapped_bytes;       // VmSwap
  std::optional<int64_t> voluntary_ctxt_switches;
  std::optional<int64_t> nonvoluntary_ctxt_switches;
};
// kInvalidArgument when a present field is malformed (not a number, unknown unit,
// overflow) or when none of the three fields is present (not a status file).
Result<StatusInfo> parseStatus(std::string_view text);

// /proc/PID/smaps_rollup: the "Pss:" line in bytes. kNotFound when there is no Pss line.
Result<int64_t> parseSmapsRollupPss(std::string_view text);
// ... its "SwapPss:" line in bytes. kNotFound when absent.
Result<int64_t> parseSmapsRollupSwapPss(std::string_view text);

// /proc/PID/io: bytes the process caused to be read from / written to storage.
struct IoInfo {
  int64_t read_bytes = 0;
  int64_t write_bytes = 0;
};
// kNotFound when either line is absent, kInvalidArgument when one is malformed.
Result<IoInfo> parseIo(std::string_view text);

// /proc/PID/stat. The comm field is "(name)" and may itself contain spaces and ')', so
// the fixed fields are read after the LAST ')'.
struct StatInfo {
  std::string comm;          // without the parentheses
  char state = '?';          // R, S, D, Z, X, ...
  int64_t minor_faults = 0;  // field 10 (minflt)
  int64_t major_faults = 0;  // field 12 (majflt)
  int64_t utime_ticks = 0;   // field 14, clock ticks
  int64_t stime_ticks = 0;   // field 15, clock ticks
  int64_t start_ticks = 0;   // field 22, clock ticks after boot
};
// kInvalidArgument when the parentheses or any of the fields up to 22 are missing/bad.
Result<StatInfo> parseStat(std::string_view text);

// /proc/stat: the "btime" line (boot time, Unix epoch seconds). kNotFound when absent.
Result<int64_t> parseBootTime(std::string_view text);

// /proc/PID/limits: the soft limit of "Max open files". Empty optional for "unlimited";
// kNotFound when the line is absent.
Result<std::optional<int64_t>> parseMaxOpenFiles(std::string_view text);

// /proc/PID/cgroup: the cgroup v2 path from the "0::/path" line (hybrid hosts also list
// v1 hierarchies, which are ignored). kNotFound when there is no v2 line (v1-only host);
// kInvalidArgument for a path that is not absolute or has a ".." component.
Result<std::string> parseCgroupV2Path(std::string_view text);

// cgroup memory.max: empty optional for "max" (no limit), else the limit in bytes.
Result<std::optional<int64_t>> parseCgroupMemoryMax(std::string_view text);

// A file holding one non-negative decimal integer and optional surrounding whitespace
// (cgroup memory.current). `what` names the file in error messages.
Result<int64_t> parseSingleInteger(std::string_view text, std::string_view what);

// cgroup cpu.stat: "usage_usec" in microseconds. kNotFound when absent.
Result<int64_t> parseCpuStatUsageUsec(std::string_view text);

// A pid file: one positive decimal pid on the first line, optional whitespace around it;
// later lines are ignored (PostgreSQL's postmaster.pid keeps more there).
Result<pid_t> parsePidFile(std::string_view text);

// True when `wanted` (non-empty) equals the comm name (one trailing newline ignored) or
// the basename of argv[0] from the NUL-separated cmdline.
bool matchesProcessName(std::string_view comm, std::string_view cmdline, std::string_view wanted);

// ---- filesystem --------------------------------------------------------------------

// Reads a whole file at an absolute path (at most `max_bytes`; procfs files report size 0,
// so this reads until EOF). Errors: kNotFound (ENOENT/ESRCH: gone), kPermissionDenied,
// kUnavailable (anything else), each naming the path.
Result<std::string> readWholeFile(const std::string& path, size_t max_bytes = 1 << 20);

// A directory tree (procfs, cgroupfs, or a fake of either in tests) addressed by paths
// relative to `root`. Immutable; safe to share between threads.
class ProcFs {
 public:
  explicit ProcFs(std::string root);

  const std::string& root() const { return root_; }
  // root + "/" + relative.
  std::string path(std::string_view relative) const;

  Result<std::string> readFile(std::string_view relative, size_t max_bytes = 1 << 20) const;
  // Number of entries in a directory, "." and ".." excluded. When counting our own
  // /proc/self/fd the descriptor used for reading is included (as Prometheus clients do).
  Result<int64_t> countEntries(std::string_view relative) const;
  // Whether a path exists (any type).
  bool exists(std::string_view relative) const;
  // The numeric entries of the root (pids, for a procfs root), unsorted.
  Result<std::vector<pid_t>> listPids() const;
  // Numeric entries of the directory `relative` (the tasks of "PID/task").
  Result<std::vector<pid_t>> listNumeric(std::string_view relative) const;

 private:
  std::string root_;
};

// ---- composed reads ----------------------------------------------------------------

// Everything dbpulse reports about one process. Only stat and status are required;
// the optional parts are what a process may refuse to show (smaps_rollup and fd/ need
// ptrace-read access to another user's process) or what is unlimited.
struct ProcessInfo {
  StatusInfo status;
  StatInfo stat;
  double cpu_seconds = 0;                    // (utime + stime) / ticks_per_second
  std::optional<double> start_time_seconds;  // Unix epoch; empty without boot time
  std::optional<int64_t> pss_bytes;
  std::optional<int64_t> swap_pss_bytes;
  std::optional<IoInfo> io;  // /proc/PID/io needs ptrace-read access, like fd/
  std::optional<int64_t> open_fds;
  std::optional<int64_t> max_fds;  // empty: unlimited or unreadable
};

// The threads of a process that share a name (process-exporter groups them so), summed.
struct ThreadGroup {
  std::string name;  // printable ASCII (other bytes become '_'), as it becomes a label
  int64_t count = 0;
  int64_t utime_ticks = 0, stime_ticks = 0;
  int64_t minor_faults = 0, major_faults = 0;
  int64_t voluntary_ctxt_switches = 0, nonvoluntary_ctxt_switches = 0;
  std::optional<int64_t> read_bytes, write_bytes;  // task io needs ptrace-read access
};
struct ThreadsInfo {
  std::vector<ThreadGroup> groups;                     // by name, at most kMaxThreadNames
  std::vector<std::pair<std::string, int64_t>> wchan;  // threads per wchan ("" = running)
};
inline constexpr size_t kMaxThreadNames = 64;
inline constexpr size_t kMaxThreads = 4096;
// Reads pid_dir/task/*/{stat,status,io,wchan}: at most kMaxThreads threads, names beyond
// kMaxThreadNames counted under "other". Threads that exit during the scan are skipped;
// fails only when the task directory cannot be listed.
Result<ThreadsInfo> readThreads(const ProcFs& proc, std::string_view pid_dir);

// Reads the process directory `pid_dir` ("self" or a pid) under `proc`. `boot_time` is
// /proc/stat's btime (empty: no start time). Fails (kNotFound, kPermissionDenied,
// kInvalidArgument) only when stat or status cannot be read and parsed; a zombie ('Z'/'X'
// state) is kNotFound because it has no memory or threads left to report.
Result<ProcessInfo> readProcess(const ProcFs& proc, std::string_view pid_dir,
                                std::optional<int64_t> boot_time, double ticks_per_second);

// Scans proc's numeric entries for processes matching `name` (see matchesProcessName),
// skipping `skip_pid` (our own), and returns the one that started first (lowest pid on a
// tie). Processes that vanish mid-scan are skipped. kNotFound when none matches;
// kCancelled when `stop` is requested during the scan.
Result<pid_t> findProcessByName(const ProcFs& proc, std::string_view name, pid_t skip_pid,
                                std::stop_token stop = {});

// The cgroup v2 numbers of one cgroup directory. Each is empty when its file is absent
// (the root cgroup has no memory.current; a controller may be disabled).
struct CgroupInfo {
  std::optional<int64_t> memory_usage_bytes;  // memory.current
  std::optional<int64_t> memory_limit_bytes;  // memory.max; empty also for "max"
  std::optional<double> cpu_seconds;          // cpu.stat usage_usec / 1e6
};

// Reads the cgroup directory `cgroup_path` (from parseCgroupV2Path) under `cgroupfs`.
// kNotFound when the directory does not exist (no cgroup v2 mounted there); a present but
// malformed file is kInvalidArgument.
Result<CgroupInfo> readCgroup(const ProcFs& cgroupfs, std::string_view cgroup_path);

}  // namespace dbpulse::collectors::proc
