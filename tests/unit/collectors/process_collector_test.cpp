#include "collectors/process/process_collector.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

#include "collectors/process/proc_reader.h"

namespace dbpulse::collectors {
namespace {

namespace fs = std::filesystem;
using namespace std::string_literals;  // "a\0b"s keeps the NULs of a cmdline

// ---- parsers -----------------------------------------------------------------------

struct StatusCase {
  const char* name;
  std::string text;
  bool ok;
  std::optional<int64_t> rss, hwm, threads;
};

TEST(ProcReaderTest, ParsesStatus) {
  const StatusCase cases[] = {
      {"typical",
       "Name:\tdbpulse\nVmPeak:\t  9999 kB\nVmHWM:\t    2000 kB\nVmRSS:\t    1234 kB\n"
       "Threads:\t7\n",
       true, 1263616, 2048000, 7},
      {"kernel thread has no Vm lines", "Name:\tkworker/0:1\nThreads:\t1\n", true, {}, {}, 1},
      {"bare number without unit", "VmRSS: 10\n", true, 10240, {}, {}},
      {"no trailing newline", "VmRSS:\t1 kB", true, 1024, {}, {}},
      {"first occurrence wins", "VmRSS:\t1 kB\nVmRSS:\t2 kB\n", true, 1024, {}, {}},
      {"name cannot forge a field", "Name:\tVmRSS: 99 kB\nThreads:\t2\n", true, {}, {}, 2},
      {"zero", "VmRSS:\t0 kB\nVmHWM:\t0 kB\nThreads:\t0\n", true, 0, 0, 0},
      {"empty", "", false, {}, {}, {}},
      {"not a status file", "hello world\n", false, {}, {}, {}},
      {"unknown unit", "VmRSS:\t12 MB\n", false, {}, {}, {}},
      {"not a number", "VmRSS:\tlots kB\n", false, {}, {}, {}},
      {"negative", "VmRSS:\t-5 kB\n", false, {}, {}, {}},
      {"missing value", "VmRSS:\n", false, {}, {}, {}},
      {"overflow", "VmRSS:\t99999999999999999 kB\n", false, {}, {}, {}},
      {"bad threads", "Threads:\tseven\n", false, {}, {}, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto r = proc::parseStatus(c.text);
    ASSERT_EQ(r.ok(), c.ok) << r.status().toString();
    if (!c.ok) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      continue;
    }
    EXPECT_EQ(r->resident_bytes, c.rss);
    EXPECT_EQ(r->resident_max_bytes, c.hwm);
    EXPECT_EQ(r->threads, c.threads);
  }
}

// Builds a stat line: "pid (comm) " + fields 3..22 with utime/stime/starttime in place.
std::string statLine(std::string_view comm, char state, int64_t utime, int64_t stime,
                     int64_t start) {
  return "123 (" + std::string(comm) + ") " + state + " 1 123 123 0 -1 4194560 100 0 0 0 " +
         std::to_string(utime) + " " + std::to_string(stime) + " 0 0 20 0 3 0 " +
         std::to_string(start) + " 12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0\n";
}

struct StatCase {
  const char* name;
  std::string text;
  bool ok;
  std::string comm;
  char state;
  int64_t utime, stime, start;
};

TEST(ProcReaderTest, ParsesStatFromTheLastParenthesis) {
  const StatCase cases[] = {
      {"typical", statLine("postgres", 'S', 250, 50, 1000), true, "postgres", 'S', 250, 50, 1000},
      {"comm with spaces and parens", statLine("a) b (c) 1 2 3", 'R', 1, 2, 3), true,
       "a) b (c) 1 2 3", 'R', 1, 2, 3},
      {"empty comm", statLine("", 'S', 0, 0, 0), true, "", 'S', 0, 0, 0},
      {"zombie", statLine("dead", 'Z', 5, 6, 7), true, "dead", 'Z', 5, 6, 7},
      {"empty", "", false, "", '?', 0, 0, 0},
      {"no parentheses", "123 comm S 1 2 3\n", false, "", '?', 0, 0, 0},
      {"only opening parenthesis", "123 (comm S 1 2 3\n", false, "", '?', 0, 0, 0},
      {"truncated", "123 (x) S 1 123 123 0 -1 4194560 100 0 0 0 5 6\n", false, "", '?', 0, 0, 0},
      {"non-numeric utime", "123 (x) S 1 1 1 0 -1 0 0 0 0 0 u 6 0 0 20 0 3 0 9\n", false, "", '?',
       0, 0, 0},
      {"two-letter state", "123 (x) SS 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 3 0 9\n", false, "", '?',
       0, 0, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto r = proc::parseStat(c.text);
    ASSERT_EQ(r.ok(), c.ok) << r.status().toString();
    if (!c.ok) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      continue;
    }
    EXPECT_EQ(r->comm, c.comm);
    EXPECT_EQ(r->state, c.state);
    EXPECT_EQ(r->utime_ticks, c.utime);
    EXPECT_EQ(r->stime_ticks, c.stime);
    EXPECT_EQ(r->start_ticks, c.start);
  }
}

// One row for every parser that returns an int64 (or "nothing") from one file.
struct IntCase {
  const char* name;
  std::string text;
  StatusCode code;
  std::optional<int64_t> value;  // compared when code is kOk
};

void expectIntCases(const IntCase* begin, const IntCase* end,
                    Result<std::optional<int64_t>> (*parse)(std::string_view)) {
  for (const IntCase* c = begin; c != end; ++c) {
    SCOPED_TRACE(c->name);
    const auto r = parse(c->text);
    EXPECT_EQ(r.status().code(), c->code) << r.status().toString();
    if (r.ok() && c->code == StatusCode::kOk) {
      EXPECT_EQ(*r, c->value);
    }
  }
}

template <Result<int64_t> (*Parse)(std::string_view)>
Result<std::optional<int64_t>> lift(std::string_view text) {
  auto r = Parse(text);
  if (!r.ok()) return r.status();
  return std::optional<int64_t>(*r);
}

TEST(ProcReaderTest, ParsesSmapsRollupPss) {
  const IntCase cases[] = {
      {"typical",
       "55d0c0a00000-7ffd3b5fe000 ---p 00000000 00:00 0    [rollup]\nRss:\t  4096 kB\n"
       "Pss:\t  800 kB\nPss_Anon:\t  500 kB\n",
       StatusCode::kOk, 819200},
      {"Pss_Anon before Pss is not Pss", "Pss_Anon:\t1 kB\nPss:\t2 kB\n", StatusCode::kOk, 2048},
      {"no Pss line", "Rss:\t4096 kB\n", StatusCode::kNotFound, {}},
      {"empty", "", StatusCode::kNotFound, {}},
      {"malformed", "Pss:\tmany kB\n", StatusCode::kInvalidArgument, {}},
  };
  expectIntCases(std::begin(cases), std::end(cases), &lift<proc::parseSmapsRollupPss>);
}

TEST(ProcReaderTest, ParsesBootTime) {
  const IntCase cases[] = {
      {"typical", "cpu  1 2 3\nintr 5\nctxt 9\nbtime 1700000000\nprocesses 77\n", StatusCode::kOk,
       1700000000},
      {"missing", "cpu  1 2 3\n", StatusCode::kNotFound, {}},
      {"malformed", "btime soon\n", StatusCode::kInvalidArgument, {}},
  };
  expectIntCases(std::begin(cases), std::end(cases), &lift<proc::parseBootTime>);
}

TEST(ProcReaderTest, ParsesMaxOpenFilesSoftLimit) {
  const std::string header =
      "Limit                     Soft Limit           Hard Limit           Units\n";
  const IntCase cases[] = {
      {"typical",
       header + "Max cpu time              unlimited            unlimited            seconds\n" +
           "Max open files            1024                 1048576              files\n",
       StatusCode::kOk, 1024},
      {"unlimited is omitted",
       header + "Max open files            unlimited            unlimited            files\n",
       StatusCode::kOk, std::nullopt},
      {"missing line", header, StatusCode::kNotFound, {}},
      {"empty", "", StatusCode::kNotFound, {}},
      {"garbage value", "Max open files  lots  lots  files\n", StatusCode::kInvalidArgument, {}},
      {"no values", "Max open files\n", StatusCode::kInvalidArgument, {}},
  };
  expectIntCases(std::begin(cases), std::end(cases), &proc::parseMaxOpenFiles);
}

TEST(ProcReaderTest, ParsesCgroupMemoryMax) {
  const IntCase cases[] = {
      {"limit", "268435456\n", StatusCode::kOk, 268435456},
      {"max means no limit", "max\n", StatusCode::kOk, std::nullopt},
      {"empty", "", StatusCode::kInvalidArgument, {}},
      {"negative", "-1\n", StatusCode::kInvalidArgument, {}},
      {"two numbers", "1 2\n", StatusCode::kInvalidArgument, {}},
  };
  expectIntCases(std::begin(cases), std::end(cases), &proc::parseCgroupMemoryMax);
}

Result<int64_t> parseMemoryCurrent(std::string_view text) {
  return proc::parseSingleInteger(text, "memory.current");
}

TEST(ProcReaderTest, ParsesSingleIntegerAndCpuStat) {
  const IntCase current[] = {
      {"typical", "104857600\n", StatusCode::kOk, 104857600},
      {"spaces", "  7  ", StatusCode::kOk, 7},
      {"empty", "", StatusCode::kInvalidArgument, {}},
      {"max is not a number here", "max\n", StatusCode::kInvalidArgument, {}},
  };
  expectIntCases(std::begin(current), std::end(current), &lift<parseMemoryCurrent>);
  const IntCase cpu[] = {
      {"typical", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n", StatusCode::kOk,
       2500000},
      {"missing", "user_usec 1\n", StatusCode::kNotFound, {}},
      {"empty", "", StatusCode::kNotFound, {}},
      {"malformed", "usage_usec x\n", StatusCode::kInvalidArgument, {}},
  };
  expectIntCases(std::begin(cpu), std::end(cpu), &lift<proc::parseCpuStatUsageUsec>);
}

TEST(ProcReaderTest, ParsesPidFile) {
  const IntCase cases[] = {
      {"typical", "1234\n", StatusCode::kOk, 1234},
      {"spaces around", "  42 \n", StatusCode::kOk, 42},
      {"zero", "0\n", StatusCode::kInvalidArgument, {}},
      {"negative", "-1\n", StatusCode::kInvalidArgument, {}},
      {"empty", "", StatusCode::kInvalidArgument, {}},
      {"text", "chat-server\n", StatusCode::kInvalidArgument, {}},
      {"two pids", "12 34\n", StatusCode::kInvalidArgument, {}},
      {"trailing junk", "12abc\n", StatusCode::kInvalidArgument, {}},
      {"too large", "99999999999\n", StatusCode::kInvalidArgument, {}},
      {"more lines after the pid (postmaster.pid)", "4242\n/var/lib/pg\n1700000000\n",
       StatusCode::kOk, 4242},
      {"junk on the first line", "x4242\n4242\n", StatusCode::kInvalidArgument, {}},
  };
  expectIntCases(std::begin(cases), std::end(cases), [](std::string_view t) {
    auto r = proc::parsePidFile(t);
    if (!r.ok()) return Result<std::optional<int64_t>>(r.status());
    return Result<std::optional<int64_t>>(std::optional<int64_t>(*r));
  });
}

TEST(ProcReaderTest, ParsesCgroupV2Path) {
  struct Case {
    const char* name;
    std::string text;
    StatusCode code;
    std::string path;
  };
  const Case cases[] = {
      {"v2 only", "0::/kubepods/burstable/pod1/ctr\n", StatusCode::kOk,
       "/kubepods/burstable/pod1/ctr"},
      {"namespaced root", "0::/\n", StatusCode::kOk, "/"},
      {"hybrid host", "12:memory:/user.slice\n1:name=systemd:/user.slice\n0::/user.slice/x\n",
       StatusCode::kOk, "/user.slice/x"},
      {"v1 only", "12:memory:/user.slice\n1:name=systemd:/user.slice\n", StatusCode::kNotFound, ""},
      {"empty", "", StatusCode::kNotFound, ""},
      {"relative", "0::kubepods\n", StatusCode::kInvalidArgument, ""},
      {"empty path", "0::\n", StatusCode::kInvalidArgument, ""},
      {"dot-dot", "0::/a/../../etc\n", StatusCode::kInvalidArgument, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto r = proc::parseCgroupV2Path(c.text);
    EXPECT_EQ(r.status().code(), c.code) << r.status().toString();
    if (r.ok()) {
      EXPECT_EQ(*r, c.path);
    }
  }
}

TEST(ProcReaderTest, MatchesProcessNameByCommOrArgv0Basename) {
  struct Case {
    const char* name;
    std::string comm, cmdline, wanted;
    bool match;
  };
  const Case cases[] = {
      {"comm exact", "chat-server\n", "", "chat-server", true},
      {"comm without newline", "chat-server", "", "chat-server", true},
      {"comm prefix is not a match", "chat-server\n", "", "chat", false},
      {"argv0 basename", "node\n",
       "/usr/local/bin/chat-server\0--port\0"
       "3000\0"s,
       "chat-server", true},
      {"bare argv0", "node\n", "chat-server\0"s, "chat-server", true},
      {"later argv is not argv0", "node\n", "/usr/bin/node\0chat-server\0"s, "chat-server", false},
      {"comm with spaces", "my server\n", "", "my server", true},
      {"empty wanted never matches", "\n", "", "", false},
      {"nothing to compare", "", "", "x", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(proc::matchesProcessName(c.comm, c.cmdline, c.wanted), c.match);
  }
}

// ---- a fake /proc and /sys/fs/cgroup ------------------------------------------------

double ticks() { return static_cast<double>(::sysconf(_SC_CLK_TCK)); }

class FakeTree {
 public:
  FakeTree() {
    std::string templ = (fs::temp_directory_path() / "dbpulse-proc-XXXXXX").string();
    const char* dir = ::mkdtemp(templ.data());
    EXPECT_NE(dir, nullptr);
    root_ = templ;
    fs::create_directories(root_ / "proc");
    fs::create_directories(root_ / "cgroup");
  }
  ~FakeTree() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  FakeTree(const FakeTree&) = delete;
  FakeTree& operator=(const FakeTree&) = delete;

  std::string proc() const { return (root_ / "proc").string(); }
  std::string cgroup() const { return (root_ / "cgroup").string(); }
  std::string file(const std::string& rel) const { return (root_ / rel).string(); }

  void write(const std::string& rel, std::string_view content) const {
    const fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }

  // A process directory with the files readProcess() needs; optional ones by flag.
  void addProcess(pid_t pid, std::string_view comm, std::string_view cmdline, char state,
                  int64_t start_ticks, int64_t rss_kib = 1000, bool full = false) const {
    const std::string d = "proc/" + std::to_string(pid) + "/";
    write(d + "comm", std::string(comm) + "\n");
    write(d + "cmdline", cmdline);
    write(d + "stat", statLine(comm, state, 10, 5, start_ticks));
    write(d + "status", "Name:\t" + std::string(comm) + "\nVmHWM:\t" + std::to_string(rss_kib * 2) +
                            " kB\nVmRSS:\t" + std::to_string(rss_kib) + " kB\nThreads:\t3\n");
    write(d + "limits",
          "Max open files            unlimited            unlimited            files\n");
    fs::create_directories(root_ / (d + "fd"));
    if (full) write(d + "smaps_rollup", "Pss:\t 500 kB\n");
  }

  void linkSelf(pid_t pid) const {
    fs::create_directory_symlink(std::to_string(pid), root_ / "proc" / "self");
  }

 private:
  fs::path root_;
};

TEST(ProcReaderTest, FindsOldestProcessByNameSkippingSelfAndZombies) {
  FakeTree tree;
  const pid_t self = ::getpid();
  tree.write("proc/stat", "btime 1700000000\n");
  tree.write("proc/sys/kernel/pid_max", "4194304\n");
  tree.addProcess(self, "chat-server", "chat-server\0"s, 'S', 1);  // ourselves: skipped
  tree.addProcess(100, "chat-server", "chat-server\0"s, 'S', 500);
  tree.addProcess(200, "node",
                  "/usr/local/bin/chat-server\0--port\0"
                  "3000\0"s,
                  'S', 300);
  tree.addProcess(300, "postgres", "postgres\0"s, 'S', 100);
  tree.addProcess(400, "chat-server", ""s, 'Z', 10);  // zombie: skipped
  tree.write("proc/500/comm", "chat-server\n");       // vanished mid-scan: no stat

  const proc::ProcFs procfs(tree.proc());
  auto pid = proc::findProcessByName(procfs, "chat-server", self);
  ASSERT_TRUE(pid.ok()) << pid.status().toString();
  EXPECT_EQ(*pid, 200);

  EXPECT_EQ(proc::findProcessByName(procfs, "redis-server", self).status().code(),
            StatusCode::kNotFound);

  std::stop_source stop;
  stop.request_stop();
  EXPECT_EQ(proc::findProcessByName(procfs, "chat-server", self, stop.get_token()).status().code(),
            StatusCode::kCancelled);
}

TEST(ProcReaderTest, ReadsCgroupWithoutLimit) {
  FakeTree tree;
  tree.write("cgroup/memory.current", "4096\n");
  tree.write("cgroup/memory.max", "max\n");
  const proc::ProcFs cgroupfs(tree.cgroup());
  auto info = proc::readCgroup(cgroupfs, "/");
  ASSERT_TRUE(info.ok()) << info.status().toString();
  EXPECT_EQ(info->memory_usage_bytes, 4096);
  EXPECT_EQ(info->memory_limit_bytes, std::nullopt);
  EXPECT_EQ(info->cpu_seconds, std::nullopt);  // no cpu.stat

  EXPECT_EQ(proc::readCgroup(cgroupfs, "/missing").status().code(), StatusCode::kNotFound);
  tree.write("cgroup/bad/memory.current", "lots\n");
  EXPECT_EQ(proc::readCgroup(cgroupfs, "/bad").status().code(), StatusCode::kInvalidArgument);
}

// ---- the collector -----------------------------------------------------------------

CollectContext context(std::stop_token stop = {}) {
  return {std::chrono::system_clock::now(),
          std::chrono::steady_clock::now() + std::chrono::seconds(5), std::move(stop)};
}

std::optional<double> find(const SampleBatch& batch, std::string_view name,
                           std::string_view process = {}) {
  std::optional<double> found;
  for (const auto& s : batch.samples()) {
    if (s.name != name || s.labels.get("process") != process) continue;
    EXPECT_FALSE(found) << "duplicate " << name << "{process=" << process << "}";
    found = s.value;
  }
  return found;
}

// dbpulse itself (fully populated) and a cgroup with a limit.
void addSelf(const FakeTree& tree) {
  const pid_t self = ::getpid();
  const std::string d = "proc/" + std::to_string(self) + "/";
  tree.write("proc/stat", "cpu  1 2 3 4\nbtime 1700000000\n");
  tree.write(d + "comm", "dbpulse\n");
  tree.write(d + "cmdline", "/usr/bin/dbpulse\0run\0"s);
  tree.write(d + "stat", statLine("dbpulse", 'S', 250, 50, 1000));
  tree.write(d + "status",
             "Name:\tdbpulse\nVmHWM:\t    2000 kB\nVmRSS:\t    1234 kB\nThreads:\t7\n");
  tree.write(d + "smaps_rollup", "Rss:\t1234 kB\nPss:\t 800 kB\n");
  tree.write(d + "limits",
             "Limit                     Soft Limit           Hard Limit           Units\n"
             "Max open files            1024                 1048576              files\n");
  tree.write(d + "fd/0", "");
  tree.write(d + "fd/1", "");
  tree.write(d + "fd/2", "");
  tree.write(d + "cgroup", "0::/kubepods/pod1/ctr\n");
  tree.linkSelf(self);
  tree.write("cgroup/kubepods/pod1/ctr/memory.current", "104857600\n");
  tree.write("cgroup/kubepods/pod1/ctr/memory.max", "268435456\n");
  tree.write("cgroup/kubepods/pod1/ctr/cpu.stat", "usage_usec 2500000\nuser_usec 2000000\n");
}

ProcessCollectorOptions fakeOptions(const FakeTree& tree) {
  ProcessCollectorOptions o;
  o.proc_root = tree.proc();
  o.cgroup_root = tree.cgroup();
  return o;
}

TEST(ProcessCollectorTest, ReportsSelfCompanionAndCgroupFromFakeTree) {
  FakeTree tree;
  addSelf(tree);
  tree.addProcess(4242, "node", "/usr/local/bin/chat-server\0"s, 'S', 2000, 5000);
  tree.write("run/chat.pid", "4242\n");
  auto options = fakeOptions(tree);
  options.companion_pid_file = tree.file("run/chat.pid");

  ProcessCollector collector(options);
  EXPECT_EQ(collector.name(), "process");
  SampleBatch out;
  const Status s = collector.collect(context(), out);
  ASSERT_TRUE(s.ok()) << s.toString();

  EXPECT_EQ(find(out, "dbpulse_process_up", "dbpulse"), 1);
  EXPECT_EQ(find(out, "dbpulse_process_resident_memory_bytes", "dbpulse"), 1263616);
  EXPECT_EQ(find(out, "dbpulse_process_resident_memory_max_bytes", "dbpulse"), 2048000);
  EXPECT_EQ(find(out, "dbpulse_process_proportional_memory_bytes", "dbpulse"), 819200);
  EXPECT_DOUBLE_EQ(*find(out, "dbpulse_process_cpu_seconds_total", "dbpulse"), 300 / ticks());
  EXPECT_EQ(find(out, "dbpulse_process_threads", "dbpulse"), 7);
  EXPECT_EQ(find(out, "dbpulse_process_open_fds", "dbpulse"), 3);
  EXPECT_EQ(find(out, "dbpulse_process_max_fds", "dbpulse"), 1024);
  EXPECT_DOUBLE_EQ(*find(out, "dbpulse_process_start_time_seconds", "dbpulse"),
                   1700000000 + 1000 / ticks());

  EXPECT_EQ(find(out, "dbpulse_process_up", "companion"), 1);
  EXPECT_EQ(find(out, "dbpulse_process_resident_memory_bytes", "companion"), 5000 * 1024);
  EXPECT_EQ(find(out, "dbpulse_process_open_fds", "companion"), 0);
  // No smaps_rollup and an unlimited fd limit: those series are omitted, not 0.
  EXPECT_EQ(find(out, "dbpulse_process_proportional_memory_bytes", "companion"), std::nullopt);
  EXPECT_EQ(find(out, "dbpulse_process_max_fds", "companion"), std::nullopt);

  EXPECT_EQ(find(out, "dbpulse_cgroup_memory_usage_bytes"), 104857600);
  EXPECT_EQ(find(out, "dbpulse_cgroup_memory_limit_bytes"), 268435456);
  EXPECT_DOUBLE_EQ(*find(out, "dbpulse_cgroup_cpu_seconds_total"), 2.5);

  const auto& families = out.families();
  ASSERT_TRUE(families.count("dbpulse_process_cpu_seconds_total"));
  EXPECT_EQ(families.at("dbpulse_process_cpu_seconds_total").type, MetricType::kCounter);
  EXPECT_EQ(families.at("dbpulse_cgroup_cpu_seconds_total").type, MetricType::kCounter);
  EXPECT_EQ(families.at("dbpulse_process_resident_memory_bytes").type, MetricType::kGauge);
  for (const auto& [name, info] : families) {
    EXPECT_FALSE(info.help.empty()) << name;
  }
  for (const auto& sample : out.samples()) {
    if (sample.name.rfind("dbpulse_process_", 0) == 0) {
      EXPECT_EQ(sample.labels.size(), 1u) << sample.name;
    } else if (sample.name.rfind("namedprocess_namegroup_", 0) == 0) {
      EXPECT_FALSE(sample.labels.get("groupname").empty()) << sample.name;
    } else {
      EXPECT_TRUE(sample.labels.empty()) << sample.name;
    }
  }
}

TEST(ProcessCollectorTest, StaleOrMissingPidFileReportsCompanionDownButSucceeds) {
  FakeTree tree;
  addSelf(tree);
  tree.write("run/stale.pid", "9999\n");  // no /proc/9999
  tree.write("run/garbage.pid", "not a pid\n");
  tree.addProcess(777, "zombie", "", 'Z', 5);
  tree.write("run/zombie.pid", "777\n");
  for (const char* pid_file :
       {"run/stale.pid", "run/missing.pid", "run/garbage.pid", "run/zombie.pid"}) {
    SCOPED_TRACE(pid_file);
    auto options = fakeOptions(tree);
    options.companion_pid_file = tree.file(pid_file);
    ProcessCollector collector(options);
    SampleBatch out;
    const Status s = collector.collect(context(), out);
    EXPECT_TRUE(s.ok()) << s.toString();
    EXPECT_EQ(find(out, "dbpulse_process_up", "companion"), 0);
    EXPECT_EQ(find(out, "dbpulse_process_resident_memory_bytes", "companion"), std::nullopt);
    EXPECT_EQ(find(out, "dbpulse_process_up", "dbpulse"), 1);
    EXPECT_EQ(find(out, "dbpulse_process_resident_memory_bytes", "dbpulse"), 1263616);
  }
}

TEST(ProcessCollectorTest, ReusedPidFallsBackToNameScan) {
  FakeTree tree;
  addSelf(tree);
  tree.addProcess(4242, "sshd", "/usr/sbin/sshd\0"s, 'S', 100);  // took the stale pid
  tree.addProcess(5000, "chat-server", "chat-server\0"s, 'S', 900, 3000);
  tree.write("run/chat.pid", "4242\n");
  auto options = fakeOptions(tree);
  options.companion_pid_file = tree.file("run/chat.pid");
  options.companion_process_name = "chat-server";
  ProcessCollector collector(options);
  SampleBatch out;
  ASSERT_TRUE(collector.collect(context(), out).ok());
  EXPECT_EQ(find(out, "dbpulse_process_up", "companion"), 1);
  EXPECT_EQ(find(out, "dbpulse_process_resident_memory_bytes", "companion"), 3000 * 1024);
}

TEST(ProcessCollectorTest, NoCompanionConfiguredMeansNoCompanionSeries) {
  FakeTree tree;
  addSelf(tree);
  tree.write("cgroup/kubepods/pod1/ctr/memory.max", "max\n");
  ProcessCollector collector(fakeOptions(tree));
  SampleBatch out;
  ASSERT_TRUE(collector.collect(context(), out).ok());
  for (const auto& sample : out.samples()) {
    EXPECT_NE(sample.labels.get("process"), "companion") << sample.name;
  }
  EXPECT_EQ(find(out, "dbpulse_cgroup_memory_usage_bytes"), 104857600);
  EXPECT_EQ(find(out, "dbpulse_cgroup_memory_limit_bytes"), std::nullopt);  // "max"
}

TEST(ProcessCollectorTest, UnreadableSelfFailsTheRun) {
  FakeTree tree;  // empty /proc: no self
  auto options = fakeOptions(tree);
  options.companion_process_name = "chat-server";
  ProcessCollector collector(options);
  SampleBatch out;
  const Status s = collector.collect(context(), out);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.toString();
  EXPECT_NE(s.message().find("own process"), std::string::npos) << s.message();
  EXPECT_EQ(find(out, "dbpulse_process_up", "dbpulse"), 0);
  EXPECT_EQ(find(out, "dbpulse_process_up", "companion"), 0);
}

TEST(ProcessCollectorTest, ShutdownDuringScanReturnsCancelled) {
  FakeTree tree;
  addSelf(tree);
  tree.addProcess(5000, "chat-server", "chat-server\0"s, 'S', 900);
  auto options = fakeOptions(tree);
  options.companion_process_name = "chat-server";
  ProcessCollector collector(options);

  std::stop_source shutdown;
  shutdown.request_stop();
  SampleBatch out;
  EXPECT_EQ(collector.collect(context(shutdown.get_token()), out).code(), StatusCode::kCancelled);
  EXPECT_EQ(find(out, "dbpulse_process_up", "dbpulse"), 1);

  // A cancel() of an earlier run does not leak into the next one.
  collector.cancel();
  SampleBatch next;
  EXPECT_TRUE(collector.collect(context(), next).ok());
  EXPECT_EQ(find(next, "dbpulse_process_up", "companion"), 1);
}

TEST(ProcessCollectorTest, ReadsRealProcSelf) {
  ProcessCollector collector(ProcessCollectorOptions{});
  SampleBatch out;
  const Status s = collector.collect(context(), out);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(find(out, "dbpulse_process_up", "dbpulse"), 1);
  EXPECT_GT(find(out, "dbpulse_process_resident_memory_bytes", "dbpulse").value_or(0), 0);
  EXPECT_GT(find(out, "dbpulse_process_open_fds", "dbpulse").value_or(0), 0);
  EXPECT_GT(find(out, "dbpulse_process_threads", "dbpulse").value_or(0), 0);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const auto start = find(out, "dbpulse_process_start_time_seconds", "dbpulse");
  ASSERT_TRUE(start);
  EXPECT_LE(*start, now + 1);
  EXPECT_GT(*start, now - 24 * 3600);  // this test binary did not start yesterday
}

// process-exporter's names for the same facts, one group per process.
TEST(ProcessCollectorTest, ReportsProcessExporterNamesPerGroup) {
  FakeTree tree;
  addSelf(tree);
  const std::string d = "proc/" + std::to_string(::getpid()) + "/";
  tree.write(d + "status",
             "Name:\tdbpulse\nVmSize:\t   9000 kB\nVmHWM:\t    2000 kB\nVmRSS:\t    1234 kB\n"
             "VmSwap:\t      4 kB\nThreads:\t7\nvoluntary_ctxt_switches:\t11\n"
             "nonvoluntary_ctxt_switches:\t3\n");
  tree.write(d + "io",
             "rchar: 99\nwchar: 98\nread_bytes: 4096\nwrite_bytes: 8192\n"
             "cancelled_write_bytes: 1\n");
  tree.write(d + "smaps_rollup", "Rss:\t1234 kB\nPss:\t 800 kB\nSwapPss:\t 2 kB\n");
  // Three threads, two of them named alike (process-exporter sums them per name).
  tree.write(d + "task/100/stat", statLine("worker", 'S', 10, 1, 1000));
  tree.write(d + "task/100/status",
             "Name:\tworker\nThreads:\t3\nvoluntary_ctxt_switches:\t5\n"
             "nonvoluntary_ctxt_switches:\t1\n");
  tree.write(d + "task/100/wchan", "do_epoll_wait");
  tree.write(d + "task/101/stat", statLine("worker", 'S', 20, 2, 1000));
  tree.write(d + "task/101/wchan", "do_epoll_wait");
  tree.write(d + "task/102/stat", statLine("dbpulse\x01", 'R', 5, 5, 1000));
  tree.write(d + "task/102/io", "read_bytes: 7\nwrite_bytes: 9\n");
  tree.write(d + "task/102/wchan", "0");
  auto options = fakeOptions(tree);
  options.companion_process_name = "no-such-chat-server";
  ProcessCollector collector(options);
  SampleBatch out;
  ASSERT_TRUE(collector.collect(context(), out).ok());

  const auto get = [&](std::string_view name, const Labels& labels) -> std::optional<double> {
    for (const auto& smp : out.samples()) {
      if (smp.name == name && smp.labels == labels) return smp.value;
    }
    return std::nullopt;
  };
  const Labels self{{"groupname", "dbpulse"}};
  EXPECT_EQ(get("namedprocess_namegroup_num_procs", self), 1);
  EXPECT_EQ(get("namedprocess_namegroup_num_procs", {{"groupname", "companion"}}), 0);
  EXPECT_DOUBLE_EQ(*get("namedprocess_namegroup_cpu_seconds_total",
                        {{"groupname", "dbpulse"}, {"mode", "user"}}),
                   250 / ticks());
  EXPECT_DOUBLE_EQ(*get("namedprocess_namegroup_cpu_seconds_total",
                        {{"groupname", "dbpulse"}, {"mode", "system"}}),
                   50 / ticks());
  const auto memory = [&](const char* memtype) {
    return get("namedprocess_namegroup_memory_bytes",
               {{"groupname", "dbpulse"}, {"memtype", memtype}});
  };
  EXPECT_EQ(memory("resident"), 1234 * 1024);
  EXPECT_EQ(memory("virtual"), 9000 * 1024);
  EXPECT_EQ(memory("swapped"), 4 * 1024);
  EXPECT_EQ(memory("proportionalResident"), 800 * 1024);
  EXPECT_EQ(memory("proportionalSwapped"), 2 * 1024);
  EXPECT_EQ(get("namedprocess_namegroup_num_threads", self), 7);
  EXPECT_EQ(get("namedprocess_namegroup_open_filedesc", self), 3);
  EXPECT_DOUBLE_EQ(*get("namedprocess_namegroup_worst_fd_ratio", self), 3.0 / 1024);
  EXPECT_EQ(get("namedprocess_namegroup_minor_page_faults_total", self), 100);
  EXPECT_EQ(get("namedprocess_namegroup_major_page_faults_total", self), 0);
  EXPECT_EQ(get("namedprocess_namegroup_context_switches_total",
                {{"ctxswitchtype", "voluntary"}, {"groupname", "dbpulse"}}),
            11);
  EXPECT_EQ(get("namedprocess_namegroup_read_bytes_total", self), 4096);
  EXPECT_EQ(get("namedprocess_namegroup_write_bytes_total", self), 8192);
  EXPECT_EQ(get("namedprocess_namegroup_states", {{"groupname", "dbpulse"}, {"state", "Sleeping"}}),
            1);
  EXPECT_EQ(get("namedprocess_namegroup_states", {{"groupname", "dbpulse"}, {"state", "Running"}}),
            0);
  const auto thread = [&](std::string_view name, Labels labels) { return get(name, labels); };
  EXPECT_EQ(thread("namedprocess_namegroup_thread_count",
                   {{"groupname", "dbpulse"}, {"threadname", "worker"}}),
            2);
  EXPECT_DOUBLE_EQ(*thread("namedprocess_namegroup_thread_cpu_seconds_total",
                           {{"groupname", "dbpulse"}, {"mode", "user"}, {"threadname", "worker"}}),
                   30 / ticks());
  EXPECT_EQ(
      thread("namedprocess_namegroup_thread_context_switches_total",
             {{"ctxswitchtype", "voluntary"}, {"groupname", "dbpulse"}, {"threadname", "worker"}}),
      5);
  // A control byte in a thread name does not reach a label value.
  EXPECT_EQ(thread("namedprocess_namegroup_thread_count",
                   {{"groupname", "dbpulse"}, {"threadname", "dbpulse_"}}),
            1);
  EXPECT_EQ(thread("namedprocess_namegroup_thread_io_bytes_total",
                   {{"groupname", "dbpulse"}, {"iomode", "write"}, {"threadname", "dbpulse_"}}),
            9);
  EXPECT_EQ(thread("namedprocess_namegroup_threads_wchan",
                   {{"groupname", "dbpulse"}, {"wchan", "do_epoll_wait"}}),
            2);
  EXPECT_EQ(
      thread("namedprocess_namegroup_threads_wchan", {{"groupname", "dbpulse"}, {"wchan", ""}}), 1);
  EXPECT_EQ(out.families().at("namedprocess_namegroup_cpu_seconds_total").type,
            MetricType::kCounter);
  EXPECT_EQ(out.families().at("namedprocess_namegroup_memory_bytes").type, MetricType::kGauge);
}

}  // namespace
}  // namespace dbpulse::collectors
