#pragma once
// RedisSession: one long-lived connection to Redis, the adapter around hiredis (hiredis
// stays inside redis_session.cpp; callers see RedisReply and Status).
//
// - Connects lazily with a connect timeout, sends AUTH when a password is set, and names
//   the connection "dbpulse" (CLIENT SETNAME, so operators can tell it apart).
// - Every command runs under a socket read/write timeout: the smaller of
//   `command_timeout` and the time left until the caller's deadline, so no call blocks
//   past the collector's run.
// - After a failed connect it retries with exponential backoff (initial_backoff, doubling,
//   capped by max_backoff); while backing off, command() fails fast with Unavailable and
//   the same message, so a down server costs nothing per run and is logged once.
// - A connection that breaks (server restarted, CLIENT KILL, idle timeout) is freed at
//   once, socket included. When the break shows on a connection reused from an earlier
//   call, the command is retried once on a fresh connection: only use the session for
//   idempotent (read-only) commands.
// - Thread-safety: command() calls are serialised by an internal mutex; cancel() may be
//   called from any thread and aborts the command in flight (shuts the socket down); a
//   connect in progress is not interruptible but ends within connect_timeout.
//
// Errors: Unavailable (cannot connect, connection lost, backing off), DeadlineExceeded
// (timeout or deadline already past), PermissionDenied (AUTH rejected, or the server
// demands a password we do not have), Cancelled (cancel()). An error *reply* (-ERR ...)
// is not a Status error: it comes back as a RedisReply of type kError.
//
// TLS: Debian's hiredis 0.14 has no TLS support, so neither has this session.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/core/mutex.h"
#include "agent/core/status.h"
#include "collectors/clients/redis/redis_reply.h"

namespace dbpulse::collectors {

struct RedisSessionOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  // from [redis] password_file; sent with AUTH, never logged
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds command_timeout{5000};
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30'000};
  std::string client_name = "dbpulse";  // "" = do not send CLIENT SETNAME
};

class RedisSession {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  explicit RedisSession(RedisSessionOptions options);
  ~RedisSession();
  RedisSession(const RedisSession&) = delete;
  RedisSession& operator=(const RedisSession&) = delete;

  // Sends one command; each argument is sent as one binary-safe bulk string (never
  // interpolated into a format string). See the header comment for errors.
  Result<RedisReply> command(const std::vector<std::string>& args,
                             SteadyTime deadline = SteadyTime::max());

  // Aborts the command in flight, if any. Thread-safe.
  void cancel();

  // Closes the connection (shutdown, tests); the next command() connects again at once.
  void disconnect();

  bool connected() const;
  // Successful connections made so far (1 + reconnects).
  uint64_t connectCount() const { return connects_.load(); }

  // "host:port", for messages and logs.
  const std::string& address() const { return address_; }

 private:
  struct Context;  // owns the redisContext (RAII)

  // The *Locked helpers run inside command(), with use_mu_ held.
  Status ensureConnectedLocked(SteadyTime deadline) REQUIRES(use_mu_);
  Result<RedisReply> runLocked(const std::vector<std::string>& args, SteadyTime deadline)
      REQUIRES(use_mu_);
  // Frees the connection; with `backoff`, also delays the next connect attempt (calls
  // meanwhile fail with `code` and `why`).
  void dropConnectionLocked(const std::string& why, bool backoff,
                            StatusCode code = StatusCode::kUnavailable) REQUIRES(use_mu_);

  const RedisSessionOptions options_;
  const std::string address_;

  Mutex use_mu_;           // held for a whole command(); serialises use of the session
  mutable Mutex conn_mu_;  // guards ctx_ itself, so cancel() never sees a dying socket
  std::unique_ptr<Context> ctx_ GUARDED_BY(conn_mu_);  // replaced under both mutexes
  bool in_flight_ GUARDED_BY(conn_mu_) = false;
  bool cancel_requested_ GUARDED_BY(conn_mu_) = false;

  SteadyTime next_attempt_ GUARDED_BY(use_mu_){};
  std::chrono::milliseconds backoff_ GUARDED_BY(use_mu_){0};
  std::string last_error_ GUARDED_BY(use_mu_);
  StatusCode last_code_ GUARDED_BY(use_mu_) = StatusCode::kUnavailable;
  std::atomic<uint64_t> connects_{0};
};

}  // namespace dbpulse::collectors
