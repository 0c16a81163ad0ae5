#include "integration/harness/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "integration/harness/child_process.h"
#include "integration/harness/harness_error.h"
#include "integration/harness/net.h"
#include "integration/harness/poll.h"

namespace dbpulse::testing {

namespace {

constexpr int kPortAttempts = 3;

// A blocking loopback connection with a deadline for every read and write.
class RespConnection {
 public:
  RespConnection(int port, std::chrono::milliseconds timeout)
      : deadline_(std::chrono::steady_clock::now() + timeout) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw HarnessError(std::string("socket: ") + std::strerror(errno));
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      const int err = errno;
      ::close(fd_);
      throw HarnessError("redis 127.0.0.1:" + std::to_string(port) +
                         ": connect: " + std::strerror(err));
    }
  }
  ~RespConnection() { ::close(fd_); }
  RespConnection(const RespConnection&) = delete;
  RespConnection& operator=(const RespConnection&) = delete;

  void send(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string& arg : args) {
      out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
    }
    std::size_t sent = 0;
    while (sent < out.size()) {
      const ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw HarnessError(std::string("redis send: ") + std::strerror(errno));
      sent += static_cast<std::size_t>(n);
    }
  }

  // One reply, rendered as RedisServer::command() documents.
  std::string reply() {
    const std::string line = readLine();
    if (line.empty()) throw HarnessError("redis: empty reply line");
    const std::string rest = line.substr(1);
    switch (line[0]) {
      case '+':
      case ':':
        return rest;
      case '-':
        throw HarnessError("redis error reply: " + rest);
      case '$': {
        const long len = std::stol(rest);
        if (len < 0) return "";
        std::string data = readExact(static_cast<std::size_t>(len) + 2);
        data.resize(static_cast<std::size_t>(len));
        return data;
      }
      case '*': {
        const long count = std::stol(rest);
        std::string joined;
        for (long i = 0; i < count; ++i) {
          if (i > 0) joined += '\n';
          joined += reply();
        }
        return joined;
      }
      default:
        throw HarnessError("redis: unexpected reply '" + line + "'");
    }
  }

 private:
  void fill() {
    if (std::chrono::steady_clock::now() > deadline_) throw HarnessError("redis: reply timed out");
    char chunk[4096];
    ssize_t n;
    do {
      n = ::recv(fd_, chunk, sizeof chunk, 0);
    } while (n < 0 && errno == EINTR);
    if (n == 0) throw HarnessError("redis: connection closed");
    if (n < 0) throw HarnessError(std::string("redis recv: ") + std::strerror(errno));
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }

  std::string readLine() {
    std::size_t end;
    while ((end = buffer_.find("\r\n")) == std::string::npos) fill();
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    return line;
  }

  std::string readExact(std::size_t n) {
    while (buffer_.size() < n) fill();
    std::string data = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return data;
  }

  int fd_ = -1;
  std::chrono::steady_clock::time_point deadline_;
  std::string buffer_;
};

}  // namespace

RedisServer::RedisServer(RedisServerOptions options)
    : options_(std::move(options)), dir_("dbpulse-redis-") {
  for (int attempt = 1;; ++attempt) {
    port_ = freeLoopbackPort();
    if (tryStart()) return;
    if (attempt == kPortAttempts) {
      throw HarnessError("redis-server: port taken " + std::to_string(kPortAttempts) +
                         " times in a row; log:\n" + readTail(logPath()));
    }
  }
}

RedisServer::~RedisServer() {
  server_.reset();
  if (currentTestFailed()) dumpFileTail("redis-server log", logPath());
}

bool RedisServer::tryStart() {
  ProcessOptions process;
  process.argv = {options_.binary,
                  "--port",
                  std::to_string(port_),
                  "--bind",
                  "127.0.0.1",
                  "--save",
                  "",
                  "--appendonly",
                  "no",
                  "--dir",
                  dir_.path().string(),
                  "--daemonize",
                  "no",
                  "--logfile",
                  ""};
  process.argv.insert(process.argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  process.log_file = logPath();
  const std::size_t log_offset = readFile(logPath()).size();
  server_ = std::make_unique<ChildProcess>(process);
  const bool ready = pollUntil([&] { return !server_->alive() || ping(); }, options_.start_timeout);
  if (ready && server_->alive()) return true;

  const std::string this_start = readFile(logPath()).substr(log_offset);
  const std::string status = server_->alive()
                                 ? "did not answer PING"
                                 : "exited with code " + std::to_string(*server_->exitCode());
  server_.reset();
  if (this_start.find("Address already in use") != std::string::npos) return false;
  throw HarnessError("redis-server on port " + std::to_string(port_) + " " + status + "; log:\n" +
                     readTail(logPath()));
}

void RedisServer::start() {
  if (running()) return;
  if (!tryStart()) {
    throw HarnessError("redis-server: port " + std::to_string(port_) +
                       " was taken while the server was stopped");
  }
}

void RedisServer::stop() {
  if (!server_) return;
  server_->signal(SIGTERM);
  const std::optional<int> code = server_->waitExit(std::chrono::seconds(15));
  server_.reset();
  if (!code) throw HarnessError("redis-server did not stop within 15 s (killed)");
}

bool RedisServer::running() { return server_ != nullptr && server_->alive(); }

std::string RedisServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

bool RedisServer::ping(std::chrono::milliseconds timeout) const {
  try {
    return command({"PING"}, timeout) == "PONG";
  } catch (const HarnessError&) {
    return false;
  }
}

std::string RedisServer::command(const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout) const {
  RespConnection connection(port_, timeout);
  connection.send(args);
  return connection.reply();
}

}  // namespace dbpulse::testing
