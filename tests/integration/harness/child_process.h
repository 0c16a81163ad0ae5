#pragma once
// Running other programs from tests: servers (postgres, redis-server), the dbpulse
// binary, one-shot tools (initdb, promtool). Every child is owned by a ChildProcess,
// which stops and reaps it on destruction, so a failing test leaks neither processes
// nor zombies.

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dbpulse::testing {

class TempDir;

struct ProcessOptions {
  // argv[0] is looked up in PATH unless it contains a '/'.
  std::vector<std::string> argv;
  // Added to (or overriding) the test process's environment.
  std::map<std::string, std::string> env;
  // Variables of the test process's environment starting with one of these are not passed
  // on (e.g. "DBPULSE_", so a developer's shell cannot override a test's config).
  std::vector<std::string> env_remove_prefixes;
  // stdout and stderr go here (appended). Empty: "<own temp dir>/<basename of argv[0]>.log".
  std::filesystem::path log_file;
  // When set, stderr goes here instead of log_file.
  std::filesystem::path stderr_file;
  // Empty: /dev/null.
  std::filesystem::path stdin_file;
  // Empty: the test's working directory.
  std::filesystem::path working_dir;
  // Run as this OS user (the test must be root), e.g. "postgres".
  std::string run_as_user;
  // The destructor sends stop_signal, waits stop_grace, then SIGKILLs the process group.
  int stop_signal = SIGTERM;
  std::chrono::milliseconds stop_grace{5000};
};

// One running child process. The child gets its own process group, stdin from
// stdin_file, and PR_SET_PDEATHSIG=SIGKILL, so it dies with the test process even when
// that is killed outright. (The death signal follows the *thread* that started the
// child: start long-lived children from the test's main thread.)
//
// Exit codes: the value passed to exit(), or 128+N when killed by signal N (the shell's
// convention). The child is reaped only by the destructor, so pid() stays valid (and is not
// reused) for the object's whole life.
//
// Not thread-safe; not copyable or movable (hold it in a unique_ptr).
class ChildProcess {
 public:
  // Starts the program. Throws HarnessError when it cannot be started (fork failed,
  // argv[0] not found or not executable, unknown run_as_user, log file not writable).
  explicit ChildProcess(ProcessOptions options);
  // stop(): stop_signal, then SIGKILL to the whole process group after stop_grace; reaps.
  ~ChildProcess();

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Sends `signo` to the child. False when it has already exited.
  bool signal(int signo);

  // Waits up to `timeout` for the child to exit; its exit code, or nullopt if still running.
  std::optional<int> waitExit(std::chrono::milliseconds timeout);

  // True while the child has not exited.
  bool alive();

  // The exit code if the child has exited, without waiting.
  std::optional<int> exitCode() { return waitExit(std::chrono::milliseconds(0)); }

  // What the destructor does, callable early: returns the exit code.
  int stop();
  // The child's peak resident memory (ru_maxrss, KiB) once stop() has reaped it; 0 before.
  long peakRssKib() const { return peak_rss_kib_; }

  const std::filesystem::path& logPath() const { return log_file_; }
  std::string log() const;
  std::string logTail(std::size_t max_bytes = 8192) const;
  // "postgres (pid 1234)"
  std::string describe() const;

 private:
  std::optional<int> checkExited();  // waitid(WNOWAIT): never reaps

  ProcessOptions options_;
  std::unique_ptr<TempDir> own_dir_;  // when no log_file was given
  std::filesystem::path log_file_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  bool reaped_ = false;
  long peak_rss_kib_ = 0;
};

// The outcome of runCommand().
struct CommandResult {
  std::optional<int> exit_code;  // nullopt: it timed out and was killed
  std::string out;               // stdout
  std::string err;               // stderr
  long peak_rss_kib = 0;         // the program's peak resident memory (VmHWM), KiB
  // "exit 2; stdout: ...; stderr: ..." for assertion messages.
  std::string describe() const;
};

struct RunOptions {
  std::map<std::string, std::string> env;
  std::vector<std::string> env_remove_prefixes;
  std::optional<std::string> stdin_text;  // nullopt: /dev/null
  std::filesystem::path working_dir;
};

// Runs a program to completion with stdout and stderr captured separately. A program still
// running after `timeout` is killed and reported with exit_code nullopt.
// Throws HarnessError when it cannot be started.
CommandResult runCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const RunOptions& options = {});

}  // namespace dbpulse::testing
