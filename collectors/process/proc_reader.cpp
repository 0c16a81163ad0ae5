#include "collectors/process/proc_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <limits>
#include <map>
#include <memory>
#include <system_error>
#include <utility>

namespace dbpulse::collectors::proc {
namespace {

constexpr std::string_view kWhitespace = " \t\r\n\f\v";

std::string_view trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(kWhitespace);
  if (begin == std::string_view::npos) return {};
  const size_t end = s.find_last_not_of(kWhitespace);
  return s.substr(begin, end - begin + 1);
}

// Calls fn(line) for each '\n'-separated line, without the newline.
template <typename Fn>
void forEachLine(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    if (fn(line)) return;  // fn returns true to stop early
    if (nl == std::string_view::npos) return;
    text.remove_prefix(nl + 1);
  }
}

std::vector<std::string_view> splitWhitespace(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    const size_t begin = s.find_first_not_of(kWhitespace, pos);
    if (begin == std::string_view::npos) break;
    size_t end = s.find_first_of(kWhitespace, begin);
    if (end == std::string_view::npos) end = s.size();
    out.push_back(s.substr(begin, end - begin));
    pos = end;
  }
  return out;
}

// A whole token of decimal digits, no sign: the kernel never prints negative values for
// the fields we read, so a '-' means we are reading the wrong thing.
std::optional<int64_t> parseUnsigned(std::string_view s) {
  if (s.empty() || s.front() < '0' || s.front() > '9') return std::nullopt;
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

Status malformed(std::string_view file, std::string_view field, std::string_view value) {
  std::string m(file);
  m += ": malformed ";
  m += field;
  m += " '";
  // Cap what we echo: the input may be hostile or huge.
  m += value.substr(0, 64);
  m += "'";
  return invalidArgument(std::move(m));
}

// "1234 kB" → bytes. The kernel always prints "kB" (meaning KiB) for these fields; a bare
// number is accepted, any other unit is rejected rather than guessed.
Result<int64_t> parseKibField(std::string_view value, std::string_view field) {
  const auto tokens = splitWhitespace(value);
  if (tokens.empty() || tokens.size() > 2 || (tokens.size() == 2 && tokens[1] != "kB")) {
    return malformed("status", field, value);
  }
  const auto kib = parseUnsigned(tokens[0]);
  if (!kib || *kib > std::numeric_limits<int64_t>::max() / 1024) {
    return malformed("status", field, value);
  }
  return *kib * 1024;
}

// Finds "key<sep>value" at the start of a line; returns the value part (untrimmed).
std::optional<std::string_view> findLineValue(std::string_view text, std::string_view prefix) {
  std::optional<std::string_view> found;
  forEachLine(text, [&](std::string_view line) {
    if (line.substr(0, prefix.size()) == prefix) {
      found = line.substr(prefix.size());
      return true;
    }
    return false;
  });
  return found;
}

Status errnoStatus(int err, const std::string& path) {
  std::string m = path + ": " + std::generic_category().message(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ESRCH:  // the process exited while we were reading its files
      return notFound(std::move(m));
    case EACCES:
    case EPERM:
      return permissionDenied(std::move(m));
    default:
      return unavailable(std::move(m));
  }
}

struct FdCloser {
  explicit FdCloser(int f) : fd(f) {}
  ~FdCloser() { ::close(fd); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int fd;
};

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

Result<DirPtr> openDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return errnoStatus(errno, path);
  return DirPtr(d);
}

// Calls fn(name) for each entry but "." and ".."; stops at a readdir error.
template <typename Fn>
Status forEachEntry(const std::string& path, Fn&& fn) {
  auto dir = openDir(path);
  if (!dir.ok()) return dir.status();
  while (true) {
    errno = 0;
    const dirent* e = ::readdir(dir->get());
    if (e == nullptr) {
      if (errno != 0) return errnoStatus(errno, path);
      return okStatus();
    }
    const std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    fn(name);
  }
}

std::string join(std::string_view dir, std::string_view file) {
  if (dir.empty()) return std::string(file);
  std::string out(dir);
  out += '/';
  out += file;
  return out;
}

// An optional file: absent, unreadable or without the wanted line → empty; present but
// malformed → the parse error.
template <typename T, typename Parse>
Result<std::optional<T>> readOptional(const ProcFs& fs, const std::string& relative,
                                      Parse&& parse) {
  auto text = fs.readFile(relative);
  if (!text.ok()) return std::optional<T>();
  auto parsed = parse(*text);
  if (!parsed.ok() && parsed.status().code() == StatusCode::kNotFound) {
    return std::optional<T>();
  }
  if (!parsed.ok()) {
    return Status(parsed.status().code(), fs.path(relative) + ": " + parsed.status().message());
  }
  return std::optional<T>(std::move(*parsed));
}

}  // namespace

// ---- pure parsers ------------------------------------------------------------------

Result<StatusInfo> parseStatus(std::string_view text) {
  StatusInfo info;
  Status error;
  // Each field: its key, where it goes, and whether it is "NNN kB" or a plain count.
  struct Field {
    std::string_view key;
    std::optional<int64_t> StatusInfo::*member;
    bool kib;
  };
  static constexpr Field kFields[] = {
      {"VmRSS", &StatusInfo::resident_bytes, true},
      {"VmHWM", &StatusInfo::resident_max_bytes, true},
      {"VmSize", &StatusInfo::virtual_bytes, true},
      {"VmSwap", &StatusInfo::swapped_bytes, true},
      {"Threads", &StatusInfo::threads, false},
      {"voluntary_ctxt_switches", &StatusInfo::voluntary_ctxt_switches, false},
      {"nonvoluntary_ctxt_switches", &StatusInfo::nonvoluntary_ctxt_switches, false},
  };
  forEachLine(text, [&](std::string_view line) {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view key = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    // First occurrence wins; the Name: line is escaped by the kernel, so a process
    // cannot forge a "VmRSS:" line through its name.
    for (const Field& f : kFields) {
      if (key != f.key || (info.*f.member).has_value()) continue;
      if (f.kib) {
        auto v = parseKibField(value, key);
        if (v.ok()) {
          info.*f.member = *v;
        } else {
          error = v.status();
        }
      } else if (const auto v = parseUnsigned(value)) {
        info.*f.member = *v;
      } else {
        error = malformed("status", key, value);
      }
    }
    return !error.ok();
  });
  if (!error.ok()) return error;
  if (!info.resident_bytes && !info.resident_max_bytes && !info.threads) {
    return invalidArgument("status: none of VmRSS, VmHWM, Threads present");
  }
  return info;
}

Result<int64_t> parseSmapsRollupPss(std::string_view text) {
  const auto value = findLineValue(text, "Pss:");
  if (!value) return notFound("smaps_rollup: no Pss line");
  auto bytes = parseKibField(*value, "Pss");
  if (!bytes.ok()) return malformed("smaps_rollup", "Pss", *value);
  return bytes;
}

Result<int64_t> parseSmapsRollupSwapPss(std::string_view text) {
  const auto value = findLineValue(text, "SwapPss:");
  if (!value) return notFound("smaps_rollup: no SwapPss line");
  auto bytes = parseKibField(*value, "SwapPss");
  if (!bytes.ok()) return malformed("smaps_rollup", "SwapPss", *value);
  return bytes;
}

Result<IoInfo> parseIo(std::string_view text) {
  // "read_bytes: 4096" lines; rchar/wchar count cached I/O too and are not what
  // process-exporter's read_bytes/write_bytes report.
  const auto read = findLineValue(text, "read_bytes:");
  const auto write = findLineValue(text, "write_bytes:");
  if (!read || !write) return notFound("io: no read_bytes/write_bytes line");
  const auto r = parseUnsigned(trim(*read));
  if (!r) return malformed("io", "read_bytes", *read);
  const auto w = parseUnsigned(trim(*write));
  if (!w) return malformed("io", "write_bytes", *write);
  return IoInfo{*r, *w};
}

Result<StatInfo> parseStat(std::string_view text) {
  // "pid (comm) state ppid ...": comm is whatever the process named itself, including
  // spaces and ')' (e.g. "(a) b) c)"), but it cannot contain the fields that follow, so
  // the last ')' ends it.
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return invalidArgument("stat: no '(comm)' field");
  }
  StatInfo info;
  info.comm = std::string(text.substr(open + 1, close - open - 1));
  const auto fields = splitWhitespace(text.substr(close + 1));
  // fields[0] is field 3 (state); field N is fields[N - 3]. We need up to 22 (starttime).
  constexpr size_t kState = 0, kMinflt = 7, kMajflt = 9, kUtime = 11, kStime = 12, kStartTime = 19;
  if (fields.size() <= kStartTime) {
    return invalidArgument("stat: " + std::to_string(fields.size() + 2) +
                           " fields, need at least 22");
  }
  if (fields[kState].size() != 1) return malformed("stat", "state", fields[kState]);
  info.state = fields[kState][0];
  const auto utime = parseUnsigned(fields[kUtime]);
  if (!utime) return malformed("stat", "utime", fields[kUtime]);
  const auto stime = parseUnsigned(fields[kStime]);
  if (!stime) return malformed("stat", "stime", fields[kStime]);
  const auto start = parseUnsigned(fields[kStartTime]);
  if (!start) return malformed("stat", "starttime", fields[kStartTime]);
  const auto minflt = parseUnsigned(fields[kMinflt]);
  if (!minflt) return malformed("stat", "minflt", fields[kMinflt]);
  const auto majflt = parseUnsigned(fields[kMajflt]);
  if (!majflt) return malformed("stat", "majflt", fields[kMajflt]);
  info.minor_faults = *minflt;
  info.major_faults = *majflt;
  info.utime_ticks = *utime;
  info.stime_ticks = *stime;
  info.start_ticks = *start;
  return info;
}

Result<int64_t> parseBootTime(std::string_view text) {
  const auto value = findLineValue(text, "btime ");
  if (!value) return notFound("/proc/stat: no btime line");
  const auto v = parseUnsigned(trim(*value));
  if (!v) return malformed("/proc/stat", "btime", *value);
  return *v;
}

Result<std::optional<int64_t>> parseMaxOpenFiles(std::string_view text) {
  // "Max open files            1024                 1048576              files"
  const auto value = findLineValue(text, "Max open files");
  if (!value) return notFound("limits: no 'Max open files' line");
  const auto fields = splitWhitespace(*value);
  if (fields.empty()) return malformed("limits", "Max open files", *value);
  if (fields[0] == "unlimited") return std::optional<int64_t>();
  const auto v = parseUnsigned(fields[0]);
  if (!v) return malformed("limits", "Max open files", fields[0]);
  return std::optional<int64_t>(*v);
}

Result<std::string> parseCgroupV2Path(std::string_view text) {
  const auto value = findLineValue(text, "0::");
  if (!value) return notFound("cgroup: no cgroup v2 ('0::') line");
  const std::string_view path = *value;
  if (path.empty() || path.front() != '/') return malformed("cgroup", "v2 path", path);
  // The kernel never prints "..", but the path is joined under a root directory, so
  // refuse anything that could step out of it.
  for (std::string_view rest = path; !rest.empty();) {
    const size_t slash = rest.find('/');
    if (rest.substr(0, slash) == "..") return malformed("cgroup", "v2 path", path);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return std::string(path);
}

Result<std::optional<int64_t>> parseCgroupMemoryMax(std::string_view text) {
  if (trim(text) == "max") return std::optional<int64_t>();
  auto v = parseSingleInteger(text, "memory.max");
  if (!v.ok()) return v.status();
  return std::optional<int64_t>(*v);
}

Result<int64_t> parseSingleInteger(std::string_view text, std::string_view what) {
  const auto v = parseUnsigned(trim(text));
  if (!v) return malformed(what, "value", trim(text));
  return *v;
}

Result<int64_t> parseCpuStatUsageUsec(std::string_view text) {
  const auto value = findLineValue(text, "usage_usec ");
  if (!value) return notFound("cpu.stat: no usage_usec line");
  const auto v = parseUnsigned(trim(*value));
  if (!v) return malformed("cpu.stat", "usage_usec", *value);
  return *v;
}

Result<pid_t> parsePidFile(std::string_view text) {
  // The pid is the first line; some daemons (PostgreSQL's postmaster.pid) write more after it.
  const std::string_view t = trim(text.substr(0, text.find('\n')));
  const auto v = parseUnsigned(t);
  if (!v || *v <= 0 || *v > std::numeric_limits<pid_t>::max()) {
    return malformed("pid file", "pid", t);
  }
  return static_cast<pid_t>(*v);
}

bool matchesProcessName(std::string_view comm, std::string_view cmdline, std::string_view wanted) {
  if (wanted.empty()) return false;
  // comm is the (15-byte truncated) name plus one '\n'; the name itself may contain
  // a newline, so strip exactly one.
  if (!comm.empty() && comm.back() == '\n') comm.remove_suffix(1);
  if (comm == wanted) return true;
  std::string_view argv0 = cmdline.substr(0, cmdline.find('\0'));
  const size_t slash = argv0.rfind('/');
  if (slash != std::string_view::npos) argv0.remove_prefix(slash + 1);
  return argv0 == wanted;
}

// ---- filesystem --------------------------------------------------------------------

Result<std::string> readWholeFile(const std::string& path, size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errnoStatus(errno, path);
  FdCloser closer{fd};
  std::string out;
  // procfs files stat as size 0 and are generated on read: read until EOF.
  char buf[4096];
  while (out.size() < max_bytes) {
    const ssize_t n = ::read(fd, buf, std::min(sizeof buf, max_bytes - out.size()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errnoStatus(errno, path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

ProcFs::ProcFs(std::string root) : root_(std::move(root)) {}

std::string ProcFs::path(std::string_view relative) const {
  if (relative.empty()) return root_;
  std::string out = root_;
  if (out.empty() || out.back() != '/') out += '/';
  out += relative;
  return out;
}

Result<std::string> ProcFs::readFile(std::string_view relative, size_t max_bytes) const {
  return readWholeFile(path(relative), max_bytes);
}

Result<int64_t> ProcFs::countEntries(std::string_view relative) const {
  int64_t n = 0;
  const Status s = forEachEntry(path(relative), [&](std::string_view) { ++n; });
  if (!s.ok()) return s;
  return n;
}

bool ProcFs::exists(std::string_view relative) const {
  struct stat st {};
  return ::stat(path(relative).c_str(), &st) == 0;
}

Result<std::vector<pid_t>> ProcFs::listPids() const {
  std::vector<pid_t> pids;
  const Status s = forEachEntry(root_, [&](std::string_view name) {
    const auto v = parseUnsigned(name);
    if (v && *v > 0 && *v <= std::numeric_limits<pid_t>::max()) {
      pids.push_back(static_cast<pid_t>(*v));
    }
  });
  if (!s.ok()) return s;
  return pids;
}

Result<std::vector<pid_t>> ProcFs::listNumeric(std::string_view relative) const {
  std::vector<pid_t> ids;
  const Status s = forEachEntry(path(relative), [&](std::string_view name) {
    const auto v = parseUnsigned(name);
    if (v && *v > 0 && *v <= std::numeric_limits<pid_t>::max()) {
      ids.push_back(static_cast<pid_t>(*v));
    }
  });
  if (!s.ok()) return s;
  return ids;
}

// ---- composed reads ----------------------------------------------------------------

Result<ThreadsInfo> readThreads(const ProcFs& proc, std::string_view pid_dir) {
  const std::string tasks = join(pid_dir, "task");
  auto ids = proc.listNumeric(tasks);
  if (!ids.ok()) return ids.status();
  std::sort(ids->begin(), ids->end());
  if (ids->size() > kMaxThreads) ids->resize(kMaxThreads);
  std::map<std::string, ThreadGroup> groups;
  std::map<std::string, int64_t> wchan;
  for (const pid_t tid : *ids) {
    const std::string dir = join(tasks, std::to_string(tid));
    auto text = proc.readFile(join(dir, "stat"));
    if (!text.ok()) continue;  // the thread exited
    auto stat = parseStat(*text);
    if (!stat.ok()) continue;
    std::string name;
    for (char c : stat->comm) name += (c >= ' ' && c <= '~' && c != '"' && c != '\\') ? c : '_';
    if (groups.size() >= kMaxThreadNames && !groups.count(name)) name = "other";
    ThreadGroup& g = groups[name];
    g.name = name;
    ++g.count;
    g.utime_ticks += stat->utime_ticks;
    g.stime_ticks += stat->stime_ticks;
    g.minor_faults += stat->minor_faults;
    g.major_faults += stat->major_faults;
    if (auto status_text = proc.readFile(join(dir, "status")); status_text.ok()) {
      if (auto status = parseStatus(*status_text); status.ok()) {
        g.voluntary_ctxt_switches += status->voluntary_ctxt_switches.value_or(0);
        g.nonvoluntary_ctxt_switches += status->nonvoluntary_ctxt_switches.value_or(0);
      }
    }
    if (auto io_text = proc.readFile(join(dir, "io")); io_text.ok()) {
      if (auto io = parseIo(*io_text); io.ok()) {
        g.read_bytes = g.read_bytes.value_or(0) + io->read_bytes;
        g.write_bytes = g.write_bytes.value_or(0) + io->write_bytes;
      }
    }
    if (auto w = proc.readFile(join(dir, "wchan"), 256); w.ok()) {
      std::string symbol(trim(*w));
      if (symbol == "0") symbol.clear();  // not waiting (or hidden by kptr_restrict)
      bool printable = symbol.size() <= 64;
      for (char c : symbol) printable = printable && c > ' ' && c <= '~' && c != '"' && c != '\\';
      ++wchan[printable ? symbol : "other"];
    }
  }
  ThreadsInfo info;
  for (auto& [name, g] : groups) info.groups.push_back(std::move(g));
  for (auto& [symbol, n] : wchan) info.wchan.emplace_back(symbol, n);
  return info;
}

Result<ProcessInfo> readProcess(const ProcFs& proc, std::string_view pid_dir,
                                std::optional<int64_t> boot_time, double ticks_per_second) {
  ProcessInfo info;
  {
    auto text = proc.readFile(join(pid_dir, "stat"));
    if (!text.ok()) return text.status();
    auto stat = parseStat(*text);
    if (!stat.ok()) {
      return Status(stat.status().code(),
                    proc.path(join(pid_dir, "stat")) + ": " + stat.status().message());
    }
    info.stat = std::move(*stat);
  }
  if (info.stat.state == 'Z' || info.stat.state == 'X') {
    return notFound(proc.path(pid_dir) + ": process has exited (zombie)");
  }
  {
    auto text = proc.readFile(join(pid_dir, "status"));
    if (!text.ok()) return text.status();
    auto status = parseStatus(*text);
    if (!status.ok()) {
      return Status(status.status().code(),
                    proc.path(join(pid_dir, "status")) + ": " + status.status().message());
    }
    info.status = *status;
  }
  info.cpu_seconds =
      static_cast<double>(info.stat.utime_ticks + info.stat.stime_ticks) / ticks_per_second;
  if (boot_time) {
    info.start_time_seconds = static_cast<double>(*boot_time) +
                              static_cast<double>(info.stat.start_ticks) / ticks_per_second;
  }
  // The rest is best effort: smaps_rollup (Linux >= 4.14) and fd/ need ptrace-read access
  // to the process, which a sidecar may lack for the companion; limits is world-readable
  // but may say "unlimited". A malformed optional file is dropped rather than failing the
  // whole process: the required numbers above are still right.
  if (auto pss = readOptional<int64_t>(proc, join(pid_dir, "smaps_rollup"),
                                       [](std::string_view t) { return parseSmapsRollupPss(t); });
      pss.ok()) {
    info.pss_bytes = *pss;
  }
  if (auto swap =
          readOptional<int64_t>(proc, join(pid_dir, "smaps_rollup"),
                                [](std::string_view t) { return parseSmapsRollupSwapPss(t); });
      swap.ok()) {
    info.swap_pss_bytes = *swap;
  }
  if (auto io = readOptional<IoInfo>(proc, join(pid_dir, "io"),
                                     [](std::string_view t) { return parseIo(t); });
      io.ok()) {
    info.io = *io;
  }
  if (auto fds = proc.countEntries(join(pid_dir, "fd")); fds.ok()) info.open_fds = *fds;
  if (auto limits = proc.readFile(join(pid_dir, "limits")); limits.ok()) {
    if (auto max = parseMaxOpenFiles(*limits); max.ok()) info.max_fds = *max;
  }
  return info;
}

Result<pid_t> findProcessByName(const ProcFs& proc, std::string_view name, pid_t skip_pid,
                                std::stop_token stop) {
  if (name.empty()) return invalidArgument("process name is empty");
  auto pids = proc.listPids();
  if (!pids.ok()) return pids.status();
  std::optional<std::pair<int64_t, pid_t>> best;  // (start ticks, pid): smallest wins
  for (const pid_t pid : *pids) {
    if (stop.stop_requested()) return cancelled("process scan cancelled");
    if (pid == skip_pid) continue;
    const std::string dir = std::to_string(pid);
    // Processes come and go during the scan: any read error just skips the entry.
    auto comm = proc.readFile(dir + "/comm", 256);
    if (!comm.ok()) continue;
    bool match = matchesProcessName(*comm, {}, name);
    if (!match) {
      // Only argv[0] matters, and it is at most PATH_MAX long.
      auto cmdline = proc.readFile(dir + "/cmdline", 4096 + 1);
      match = cmdline.ok() && matchesProcessName({}, *cmdline, name);
    }
    if (!match) continue;
    auto text = proc.readFile(dir + "/stat");
    if (!text.ok()) continue;
    auto stat = parseStat(*text);
    if (!stat.ok() || stat->state == 'Z' || stat->state == 'X') continue;
    const std::pair<int64_t, pid_t> key{stat->start_ticks, pid};
    if (!best || key < *best) best = key;
  }
  if (!best) return notFound("no process named '" + std::string(name) + "' in " + proc.root());
  return best->second;
}

Result<CgroupInfo> readCgroup(const ProcFs& cgroupfs, std::string_view cgroup_path) {
  std::string_view dir = cgroup_path;
  while (!dir.empty() && dir.front() == '/') dir.remove_prefix(1);
  if (!cgroupfs.exists(dir)) {
    return notFound(cgroupfs.path(dir) + ": cgroup directory not found");
  }
  CgroupInfo info;
  auto current = readOptional<int64_t>(
      cgroupfs, join(dir, "memory.current"),
      [](std::string_view t) { return parseSingleInteger(t, "memory.current"); });
  if (!current.ok()) return current.status();
  info.memory_usage_bytes = *current;

  auto max = readOptional<std::optional<int64_t>>(
      cgroupfs, join(dir, "memory.max"),
      [](std::string_view t) { return parseCgroupMemoryMax(t); });
  if (!max.ok()) return max.status();
  if (max->has_value()) info.memory_limit_bytes = **max;

  auto usage = readOptional<int64_t>(cgroupfs, join(dir, "cpu.stat"),
                                     [](std::string_view t) { return parseCpuStatUsageUsec(t); });
  if (!usage.ok()) return usage.status();
  if (usage->has_value()) info.cpu_seconds = static_cast<double>(**usage) / 1e6;
  return info;
}

}  // namespace dbpulse::collectors::proc
