#include "integration/harness/child_process.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>

#include "integration/harness/harness_error.h"
#include "integration/harness/os_user.h"
#include "integration/harness/temp_dir.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX, not in a header

namespace dbpulse::testing {

namespace {

// Owns a file descriptor opened in the parent for the child.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Fd openOrThrow(const std::filesystem::path& path, int flags) {
  Fd fd(::open(path.c_str(), flags | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw HarnessError("open " + path.string() + ": " + std::strerror(errno));
  return fd;
}

// What the child reports through the exec-status pipe when it cannot exec.
struct ChildFailure {
  int stage;  // index into kStages
  int error;  // errno
};
constexpr const char* kStages[] = {"setgroups", "setgid", "setuid", "chdir", "exec"};

[[noreturn]] void childFail(int pipe_fd, int stage) {
  const ChildFailure failure{stage, errno};
  ssize_t ignored = ::write(pipe_fd, &failure, sizeof failure);
  (void)ignored;
  ::_exit(127);
}

std::vector<std::string> buildEnvironment(const std::map<std::string, std::string>& additions,
                                          const std::vector<std::string>& remove_prefixes) {
  std::map<std::string, std::string> merged;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    bool removed = false;
    for (const std::string& prefix : remove_prefixes) removed |= entry.rfind(prefix, 0) == 0;
    if (!removed) merged[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [key, value] : additions) merged[key] = value;
  std::vector<std::string> env;
  env.reserve(merged.size());
  for (const auto& [key, value] : merged) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> cStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

ChildProcess::ChildProcess(ProcessOptions options) : options_(std::move(options)) {
  if (options_.argv.empty()) throw HarnessError("ChildProcess: empty argv");
  const std::string program = std::filesystem::path(options_.argv[0]).filename().string();

  log_file_ = options_.log_file;
  if (log_file_.empty()) {
    own_dir_ = std::make_unique<TempDir>("dbpulse-proc-");
    log_file_ = *own_dir_ / (program + ".log");
  }

  std::optional<OsUser> user;
  std::map<std::string, std::string> env_additions = options_.env;
  if (!options_.run_as_user.empty()) {
    if (!runningAsRoot()) {
      throw HarnessError("ChildProcess: run_as_user=" + options_.run_as_user + " needs root");
    }
    user = lookupOsUser(options_.run_as_user);
    if (!user) throw HarnessError("ChildProcess: no OS user '" + options_.run_as_user + "'");
    env_additions.try_emplace("HOME", user->home);
    env_additions.try_emplace("USER", user->name);
    env_additions.try_emplace("LOGNAME", user->name);
  }

  // Everything the child needs is prepared here: after fork() in a possibly multi-threaded
  // process the child may only make async-signal-safe calls (no allocation).
  std::vector<std::string> argv_strings = options_.argv;
  std::vector<char*> argv = cStrings(argv_strings);
  std::vector<std::string> env_strings =
      buildEnvironment(env_additions, options_.env_remove_prefixes);
  std::vector<char*> envp = cStrings(env_strings);
  const std::string cwd = options_.working_dir.string();

  Fd in = openOrThrow(options_.stdin_file.empty() ? "/dev/null" : options_.stdin_file, O_RDONLY);
  Fd out = openOrThrow(log_file_, O_WRONLY | O_CREAT | O_APPEND);
  Fd err = options_.stderr_file.empty()
               ? Fd(::fcntl(out.get(), F_DUPFD_CLOEXEC, 3))
               : openOrThrow(options_.stderr_file, O_WRONLY | O_CREAT | O_APPEND);
  if (err.get() < 0) throw HarnessError(std::string("dup: ") + std::strerror(errno));

  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
    throw HarnessError(std::string("pipe2: ") + std::strerror(errno));
  }
  Fd status_read(status_pipe[0]);
  Fd status_write(status_pipe[1]);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw HarnessError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int signo : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2}) {
      ::sigaction(signo, &dfl, nullptr);
    }
    if (user) {
      if (::setgroups(user->groups.size(), user->groups.data()) != 0)
        childFail(status_write.get(), 0);
      if (::setgid(user->gid) != 0) childFail(status_write.get(), 1);
      if (::setuid(user->uid) != 0) childFail(status_write.get(), 2);
    }
    // After the credential change, which clears it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in.get(), STDIN_FILENO);
    ::dup2(out.get(), STDOUT_FILENO);
    ::dup2(err.get(), STDERR_FILENO);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) childFail(status_write.get(), 3);
    ::execvpe(argv[0], argv.data(), envp.data());
    childFail(status_write.get(), 4);
  }

  ::setpgid(pid, pid);  // also from the parent, so stop() can signal the group at once
  pid_ = pid;
  status_write.reset();
  ChildFailure failure{};
  ssize_t n;
  do {
    n = ::read(status_read.get(), &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    exit_code_ = 127;
    throw HarnessError("cannot start " + options_.argv[0] + ": " + kStages[failure.stage] + ": " +
                       std::strerror(failure.error));
  }
}

ChildProcess::~ChildProcess() { stop(); }

std::optional<int> ChildProcess::checkExited() {
  if (exit_code_) return exit_code_;
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    // ECHILD: someone else reaped it (e.g. a SIGCHLD handler). Treat as exited, code unknown.
    reaped_ = true;
    exit_code_ = -1;
    return exit_code_;
  }
  if (info.si_pid == 0) return std::nullopt;
  exit_code_ = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
  return exit_code_;
}

bool ChildProcess::signal(int signo) {
  if (checkExited()) return false;
  return ::kill(pid_, signo) == 0;
}

std::optional<int> ChildProcess::waitExit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    if (std::optional<int> code = checkExited()) return code;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::nullopt;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

bool ChildProcess::alive() { return !checkExited().has_value(); }

int ChildProcess::stop() {
  if (reaped_) return exit_code_.value_or(-1);
  if (!checkExited()) {
    ::kill(pid_, options_.stop_signal);
    waitExit(options_.stop_grace);
  }
  // The leader is alive or a zombie, so its pid (= the group id) cannot have been reused:
  // this reaches only what it started (e.g. postgres backends), never a stranger.
  ::kill(-pid_, SIGKILL);
  int status = 0;
  pid_t rc;
  rusage usage{};
  do {
    rc = ::wait4(pid_, &status, 0, &usage);
  } while (rc < 0 && errno == EINTR);
  if (rc == pid_) peak_rss_kib_ = usage.ru_maxrss;
  if (!exit_code_ && rc == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  reaped_ = true;
  return exit_code_.value_or(-1);
}

std::string ChildProcess::log() const { return readFile(log_file_); }

std::string ChildProcess::logTail(std::size_t max_bytes) const {
  return readTail(log_file_, max_bytes);
}

std::string ChildProcess::describe() const {
  return std::filesystem::path(options_.argv[0]).filename().string() + " (pid " +
         std::to_string(pid_) + ")";
}

std::string CommandResult::describe() const {
  std::ostringstream ss;
  if (exit_code) {
    ss << "exit " << *exit_code;
  } else {
    ss << "timed out";
  }
  ss << "\n--- stdout ---\n" << out << "\n--- stderr ---\n" << err;
  return ss.str();
}

CommandResult runCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const RunOptions& options) {
  TempDir dir("dbpulse-cmd-");
  ProcessOptions process;
  process.argv = argv;
  process.env = options.env;
  process.env_remove_prefixes = options.env_remove_prefixes;
  process.working_dir = options.working_dir;
  process.log_file = dir / "stdout";
  process.stderr_file = dir / "stderr";
  if (options.stdin_text) {
    process.stdin_file = dir / "stdin";
    writeFile(process.stdin_file, *options.stdin_text);
  }
  process.stop_grace = std::chrono::milliseconds(2000);

  CommandResult result;
  {
    ChildProcess child(process);
    result.exit_code = child.waitExit(timeout);
    child.stop();
    result.peak_rss_kib = child.peakRssKib();
  }
  result.out = readFile(dir / "stdout");
  result.err = readFile(dir / "stderr");
  return result;
}

}  // namespace dbpulse::testing
