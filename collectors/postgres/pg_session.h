#pragma once
// PgSession: one long-lived PostgreSQL session shared by a group of collectors.
//
// - Connects lazily with application_name=dbpulse and the session's
//   statement_timeout / lock_timeout, so no query can run away.
// - After a failure it reconnects with exponential backoff (initial 500 ms,
//   doubling, capped by `max_backoff`); while backing off, query() fails fast with
//   Unavailable and the last error, so a down server costs nothing per run.
// - query() is serialised by an internal mutex (one statement at a time on the
//   session); cancel() may be called from any thread and aborts the running
//   statement (PQcancel).
// libpqxx stays inside pg_session.cpp; callers see PgRows and Status.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "agent/core/status.h"
#include "collectors/postgres/pg_rows.h"

namespace dbpulse::collectors {

struct PgSessionOptions {
  std::string dsn;       // libpq key=value string or postgres:// URI
  std::string password;  // from password_file; appended to the DSN, never logged
  std::chrono::milliseconds statement_timeout{5000};
  std::chrono::milliseconds lock_timeout{1000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds max_backoff{30'000};
  std::string application_name = "dbpulse";
  // pgbouncer's admin console: no `options` startup parameter (it rejects unknown ones)
  // and only SHOW commands, which the pooler answers itself.
  bool admin_console = false;
  // default_transaction_read_only=on from the first statement (survives reconnects): for
  // sessions that run statements from outside (the index advisor, analyze-query).
  bool read_only = false;
};

class PgSession {
 public:
  explicit PgSession(PgSessionOptions options);
  ~PgSession();
  PgSession(const PgSession&) = delete;
  PgSession& operator=(const PgSession&) = delete;

  // Runs one read-only statement. Errors: Unavailable (cannot connect, connection
  // lost, backing off), DeadlineExceeded (statement_timeout or cancel),
  // PermissionDenied (missing privilege), InvalidArgument (SQL error).
  Result<PgRows> query(const std::string& sql);
  // Like query(), but over the extended protocol, which takes exactly one statement: a
  // text with a second statement hidden after a ';' is rejected by the server
  // (InvalidArgument) instead of run. For SQL that comes from outside dbpulse.
  Result<PgRows> querySingle(const std::string& sql);

  // The server's notices and warnings (e.g. VACUUM's "skipping ... lock not available")
  // since the last call, oldest first; cleared at every query. Not for the console.
  std::vector<std::string> takeNotices();

  // Aborts the statement running now, if any. Thread-safe.
  void cancel();

  // Closes the connection (shutdown); the next query() reconnects.
  void disconnect();

  // server_version_num of the connected server (e.g. 150004), 0 when not connected.
  int serverVersion() const;

  // The DSN with any password replaced by "***", for logs and errors.
  const std::string& redactedDsn() const { return redacted_dsn_; }

 private:
  Result<PgRows> run(const std::string& sql, bool single_statement);
  Status ensureConnectedLocked();
  void dropConnectionLocked(const std::string& why);

  const PgSessionOptions options_;
  const std::string conninfo_;
  const std::string redacted_dsn_;

  std::mutex use_mu_;   // held for a whole query(); serialises use of the session
  std::mutex conn_mu_;  // guards conn_ itself, so cancel() never sees a dying connection
  struct Connection;  // wraps pqxx::connection (a typedef in libpqxx 6, so not forward-declarable)
  std::unique_ptr<Connection> conn_;  // GUARDED_BY(conn_mu_); replaced under both
  int server_version_ = 0;

  std::chrono::steady_clock::time_point next_attempt_{};  // GUARDED_BY(use_mu_)
  std::chrono::milliseconds backoff_{0};
  std::string last_error_;
};

// Replaces password=... values and URI passwords with ***.
std::string redactDsn(const std::string& dsn);

}  // namespace dbpulse::collectors
