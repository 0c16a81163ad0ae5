#include "collectors/clients/redis/redis_session.h"

#include <hiredis/hiredis.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace dbpulse::collectors {

struct RedisSession::Context {
  explicit Context(redisContext* raw) : c(raw) {}
  ~Context() {
    if (c != nullptr) redisFree(c);  // closes the socket
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  redisContext* c;
};

namespace {

using std::chrono::milliseconds;

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};

timeval toTimeval(milliseconds d) {
  // hiredis treats a zero timeout as "no timeout": never hand it one.
  d = std::max(d, milliseconds(1));
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

// hiredis caps nesting at 7 levels itself; the recursion depth is bounded by that.
RedisReply convert(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i) {
        if (r.element[i] != nullptr) out.elements.push_back(convert(*r.element[i]));
      }
      break;
    default:
      out.type = RedisReply::Type::kNil;
      break;
  }
  return out;
}

bool startsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

std::string formatMs(milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

RedisSession::RedisSession(RedisSessionOptions options)
    : options_(std::move(options)), address_(options_.host + ":" + std::to_string(options_.port)) {}

RedisSession::~RedisSession() { disconnect(); }

void RedisSession::disconnect() {
  MutexLock use_lock(use_mu_);
  MutexLock conn_lock(conn_mu_);
  ctx_.reset();
  backoff_ = milliseconds(0);
  next_attempt_ = {};
}

bool RedisSession::connected() const {
  MutexLock conn_lock(conn_mu_);
  return ctx_ != nullptr;
}

void RedisSession::cancel() {
  MutexLock conn_lock(conn_mu_);
  cancel_requested_ = true;
  // shutdown(), not close(): the descriptor stays ours until redisFree, so it cannot be
  // reused by another thread's open() while hiredis still reads from it.
  if (ctx_ && in_flight_) ::shutdown(ctx_->c->fd, SHUT_RDWR);
}

void RedisSession::dropConnectionLocked(const std::string& why, bool backoff, StatusCode code) {
  last_error_ = why;
  last_code_ = code;
  {
    MutexLock conn_lock(conn_mu_);
    ctx_.reset();
  }
  if (backoff) {
    backoff_ = backoff_.count() == 0 ? options_.initial_backoff
                                     : std::min(backoff_ * 2, options_.max_backoff);
    next_attempt_ = std::chrono::steady_clock::now() + backoff_;
  } else {
    // A connection that worked and then broke (restart, CLIENT KILL): reconnect at once.
    backoff_ = milliseconds(0);
    next_attempt_ = {};
  }
}

Status RedisSession::ensureConnectedLocked(SteadyTime deadline) {
  {
    MutexLock conn_lock(conn_mu_);
    if (ctx_) return okStatus();
  }
  const auto now = std::chrono::steady_clock::now();
  if (now < next_attempt_) {
    // The same status while backing off, so the scheduler logs it only once.
    return Status(last_code_, last_error_);
  }
  if (now >= deadline) return deadlineExceeded("redis " + address_ + ": no time left to connect");
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - now);
  const milliseconds timeout = std::min(options_.connect_timeout, left);

  redisContext* raw =
      redisConnectWithTimeout(options_.host.c_str(), options_.port, toTimeval(timeout));
  if (raw == nullptr) {
    dropConnectionLocked("redis " + address_ + ": cannot allocate a connection", true);
    return unavailable(last_error_);
  }
  auto ctx = std::make_unique<Context>(raw);
  if (raw->err != 0) {
    std::string why = raw->errstr;
    if (why.find("timed out") != std::string::npos) why += " after " + formatMs(timeout);
    dropConnectionLocked("redis " + address_ + ": connect: " + why, true);
    return unavailable(last_error_);
  }
  {
    MutexLock conn_lock(conn_mu_);
    ctx_ = std::move(ctx);
  }

  if (!options_.password.empty()) {
    auto auth = runLocked({"AUTH", options_.password}, deadline);
    if (!auth.ok()) {
      if (auth.status().code() != StatusCode::kCancelled) {
        dropConnectionLocked(auth.status().message(), true, auth.status().code());
      }
      return auth.status();
    }
    if (auth->isError()) {
      // The server's text names the problem (WRONGPASS, no password configured) and never
      // echoes the password.
      dropConnectionLocked(
          "redis " + address_ + ": AUTH rejected: " + auth->str + " (check [redis] password_file)",
          true, StatusCode::kPermissionDenied);
      return permissionDenied(last_error_);
    }
  }
  if (!options_.client_name.empty()) {
    // Best effort: CLIENT may be renamed or denied by an ACL; the name is a courtesy.
    auto named = runLocked({"CLIENT", "SETNAME", options_.client_name}, deadline);
    if (!named.ok()) {
      if (named.status().code() != StatusCode::kCancelled) {
        dropConnectionLocked(named.status().message(), true, named.status().code());
      }
      return named.status();
    }
  }
  backoff_ = milliseconds(0);
  ++connects_;
  return okStatus();
}

// One command on the current connection, no retry. On any transport failure the
// connection is freed (without backoff: the next call reconnects at once).
Result<RedisReply> RedisSession::runLocked(const std::vector<std::string>& args,
                                           SteadyTime deadline) {
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline) {
    return deadlineExceeded("redis " + address_ + ": " + args.front() + ": deadline passed");
  }
  const milliseconds timeout =
      std::min(options_.command_timeout, std::chrono::duration_cast<milliseconds>(deadline - now));

  std::vector<const char*> argv;
  std::vector<size_t> argvlen;
  argv.reserve(args.size());
  argvlen.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    argvlen.push_back(a.size());
  }

  redisContext* c = nullptr;
  {
    MutexLock conn_lock(conn_mu_);
    if (cancel_requested_) return cancelled("redis " + address_ + ": cancelled");
    c = ctx_->c;
    in_flight_ = true;
  }
  redisSetTimeout(c, toTimeval(timeout));
  void* raw = redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), argvlen.data());
  const int saved_errno = errno;
  bool was_cancelled = false;
  {
    MutexLock conn_lock(conn_mu_);
    in_flight_ = false;
    was_cancelled = cancel_requested_;
  }

  if (raw == nullptr) {
    const std::string why = c->errstr;
    const bool timed_out =
        c->err == REDIS_ERR_IO &&
        (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT ||
         why.find("temporarily unavailable") != std::string::npos);
    const std::string prefix = "redis " + address_ + ": " + args.front() + ": ";
    if (was_cancelled) {
      dropConnectionLocked(prefix + "cancelled", false);
      return cancelled(last_error_);
    }
    if (timed_out) {
      dropConnectionLocked(prefix + "no reply within " + formatMs(timeout), false);
      return deadlineExceeded(last_error_);
    }
    dropConnectionLocked(prefix + "connection lost: " + (why.empty() ? "closed" : why), false);
    return unavailable(last_error_);
  }
  std::unique_ptr<redisReply, ReplyDeleter> reply(static_cast<redisReply*>(raw));
  return convert(*reply);
}

Result<RedisReply> RedisSession::command(const std::vector<std::string>& args,
                                         SteadyTime deadline) {
  if (args.empty()) return invalidArgument("redis: empty command");
  MutexLock use_lock(use_mu_);
  {
    MutexLock conn_lock(conn_mu_);
    cancel_requested_ = false;
  }
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    {
      MutexLock conn_lock(conn_mu_);
      reused = ctx_ != nullptr;
    }
    if (Status s = ensureConnectedLocked(deadline); !s.ok()) return s;
    auto reply = runLocked(args, deadline);
    // A connection reused from an earlier call may have been closed meanwhile (restart,
    // CLIENT KILL, server-side idle timeout): one fresh attempt tells that apart from a
    // server that is really gone.
    if (!reply.ok() && reply.status().code() == StatusCode::kUnavailable && reused &&
        attempt == 0) {
      continue;
    }
    if (reply.ok() && reply->isError() && startsWith(reply->str, "NOAUTH")) {
      dropConnectionLocked(
          "redis " + address_ + ": the server requires a password (set [redis] password_file)",
          true, StatusCode::kPermissionDenied);
      return permissionDenied(last_error_);
    }
    return reply;
  }
}

}  // namespace dbpulse::collectors
