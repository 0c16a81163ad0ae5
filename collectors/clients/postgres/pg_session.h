#pragma once
// PgSession: one long-lived PostgreSQL session shared by a group of collectors.
//
// - Connects lazily with application_name=dbpulse and the session's
//   statement_timeout / lock_timeout, so no query can run away on the server.
// - Every wait is bounded on the client too, so a server that stops answering (a
//   SIGSTOPped backend or postmaster, a partitioned network) cannot hold the caller:
//   connecting gives up after connect_timeout; a statement whose answer has not come
//   statement_timeout + answer_grace after it was sent is abandoned and the connection
//   dropped (Unavailable, "no answer ..."). TCP keepalives and tcp_user_timeout are set
//   for idle connections and unacknowledged writes.
// - After a failure it reconnects with exponential backoff (initial 500 ms,
//   doubling, capped by `max_backoff`); while backing off, query() fails fast with
//   Unavailable and the last error, so a down server costs nothing per run.
// - One statement at a time on the session: callers queue for it.
// - Cancelling never blocks the caller: cancel() only flags the statement; the thread
//   running it sends the server's cancel request from a short-lived helper thread
//   (libpq 15's PQcancel is blocking I/O) and, when the server has not ended the
//   statement answer_grace later, drops the connection.
// - Rows are read one at a time (libpq's single-row mode): a result is never held twice
//   (as libpq's PGresult and as PgRows), and queryChunks() hands a large result over in
//   chunks so that a catalog of 10,000 tables costs a chunk's memory, not the result's.
// libpq stays inside pg_session.cpp; callers see PgRows and Status, through SqlSession
// (sql_session.h), the interface every user of PostgreSQL takes.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/core/mutex.h"
#include "agent/core/status.h"
#include "collectors/clients/postgres/pg_rows.h"
#include "collectors/clients/postgres/sql_session.h"

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
  // How long past statement_timeout the client waits for the server's answer before it
  // takes the server for hung or unreachable and drops the connection; also how long a
  // cancelled statement may take to end. Keep statement_timeout + answer_grace below the
  // timeout of the run that issues the query, so the run reports the cause itself.
  std::chrono::milliseconds answer_grace{1000};
};

class PgSession final : public SqlSession {
 public:
  explicit PgSession(PgSessionOptions options);
  // Waits for a running statement (bounded, see above), then closes the connection.
  ~PgSession() override;
  PgSession(const PgSession&) = delete;
  PgSession& operator=(const PgSession&) = delete;

  // Runs one read-only statement. Errors: Unavailable (cannot connect, connection
  // lost, backing off, server not answering), DeadlineExceeded (statement_timeout or
  // cancel), PermissionDenied (missing privilege), InvalidArgument (SQL error).
  // Any thread; statements of different callers run one after the other.
  Result<PgRows> query(const std::string& sql) override;
  // For a statement the caller put under a statement_timeout of its own (SET
  // statement_timeout = server_timeout): the client waits that long + answer_grace.
  Result<PgRows> query(const std::string& sql, std::chrono::milliseconds server_timeout) override;
  // One statement with $1..$n bound to `params` (PQsendQueryParams, text format).
  Result<PgRows> queryParams(const std::string& sql, const SqlParams& params) override;
  // Like query(), but over the extended protocol, which takes exactly one statement: a
  // text with a second statement hidden after a ';' is rejected by the server
  // (InvalidArgument) instead of run. For SQL that comes from outside dbpulse.
  Result<PgRows> querySingle(const std::string& sql) override;
  // Like query() for one statement, but the rows go to `on_chunk` in chunks of at most
  // `chunk_rows` (> 0) as they arrive, then the call returns. Errors as query(); rows
  // already handed over before an error stay handed over (the caller drops what it built).
  // `on_chunk` is called at least once (with no rows for an empty result), on this thread,
  // while the session is held: it must not query the session.
  Status queryChunks(const std::string& sql, size_t chunk_rows, const PgChunkFn& on_chunk) override;

  // The server's notices and warnings (e.g. VACUUM's "skipping ... lock not available")
  // since the last call, oldest first; cleared at every query. Not for the console.
  std::vector<PgNotice> takeNotices() override;

  // Cancels every statement of the session: the running one and those waiting to start
  // (for an owner that is the session's only user: maintenance, the advisor). Callers
  // that share a session cancel through their caller() handle instead. Thread-safe; never
  // blocks.
  void cancel() override;

  // Closes the connection (shutdown); the next query() reconnects. Waits for a running
  // statement first (bounded by its client-side deadline).
  void disconnect() override;

  // server_version_num of the connected server (e.g. 150004), 0 when not connected.
  // Any thread.
  int serverVersion() const override { return server_version_.load(); }

  // The DSN with any password replaced by "***", for logs and errors.
  const std::string& redactedDsn() const override { return redacted_dsn_; }

  // A PgCaller on this session.
  std::unique_ptr<SqlSession> caller() override;

  // Statements waiting for the session to be free (diagnostics). Any thread.
  size_t waitingStatements() const;

  // Distinct ids for PgCaller (0 is the session's own).
  uint64_t newCallerId() { return next_caller_.fetch_add(1) + 1; }

 private:
  friend class PgCaller;
  using SteadyTime = std::chrono::steady_clock::time_point;
  enum class Wake { kReady, kDeadline, kCancel };
  struct Connection;

  Result<PgRows> run(const std::string& sql, bool single_statement,
                     std::chrono::milliseconds server_timeout, uint64_t caller,
                     size_t chunk_rows = 0, const PgChunkFn* on_chunk = nullptr,
                     const SqlParams* params = nullptr);
  // Takes the session for one statement (a ticket), or gives up when the caller's
  // waiting statement is cancelled. Release with release().
  Status acquire(uint64_t caller, bool cancellable);
  void release();
  void cancelCaller(uint64_t caller, bool everyone);
  // The rest runs only on the thread holding the session (acquire()).
  Status ensureConnected();
  Result<PgRows> execute(const std::string& sql, bool single_statement,
                         std::chrono::milliseconds server_timeout, size_t chunk_rows,
                         const PgChunkFn* on_chunk, const SqlParams* params);
  Wake waitSocket(int fd, short events, SteadyTime deadline);
  void sendCancel();
  Status dropConnection(const std::string& why);

  const PgSessionOptions options_;
  const std::string conninfo_;
  const std::string redacted_dsn_;
  int wake_fd_ = -1;  // eventfd: cancel() wakes the thread waiting on the socket

  mutable Mutex state_mu_;
  std::condition_variable_any state_cv_;
  bool busy_ GUARDED_BY(state_mu_) = false;  // a thread holds the session
  uint64_t running_caller_ GUARDED_BY(state_mu_) = 0;
  uint64_t next_ticket_ GUARDED_BY(state_mu_) = 0;
  std::map<uint64_t, uint64_t> waiting_ GUARDED_BY(state_mu_);  // ticket -> caller
  std::set<uint64_t> cancelled_ GUARDED_BY(state_mu_);          // waiting tickets cancelled
  std::atomic<bool> cancel_requested_{false};  // the running statement is to be cancelled
  std::atomic<uint64_t> next_caller_{0};
  std::atomic<int> server_version_{0};
  // Set while a cancel request is on its way; shared with the helper thread sending it,
  // which may outlive the session (a PQcancel to a stopped postmaster waits for it).
  std::shared_ptr<std::atomic<bool>> cancel_in_flight_ = std::make_shared<std::atomic<bool>>(false);

  // Owned by the thread holding the session.
  std::unique_ptr<Connection> conn_;
  SteadyTime next_attempt_{};
  std::chrono::milliseconds backoff_{0};
  std::string last_error_;
};

// One user's handle on a shared PgSession (a collector of a group): the session's
// queries, and a cancel() that ends only this caller's statement, the one it runs or
// waits to start, never another member's (each statement takes a ticket naming its
// caller when it starts). Thread-safety as PgSession; cancel() never blocks. The session
// must outlive it. takeNotices() and disconnect() are the session's.
class PgCaller final : public SqlSession {
 public:
  explicit PgCaller(PgSession& session) : session_(session), id_(session.newCallerId()) {}

  Result<PgRows> query(const std::string& sql) override {
    return session_.run(sql, false, session_.options_.statement_timeout, id_);
  }
  Result<PgRows> query(const std::string& sql, std::chrono::milliseconds server_timeout) override {
    return session_.run(sql, false, server_timeout, id_);
  }
  Result<PgRows> queryParams(const std::string& sql, const SqlParams& params) override {
    return session_.run(sql, true, session_.options_.statement_timeout, id_, 0, nullptr, &params);
  }
  Result<PgRows> querySingle(const std::string& sql) override {
    return session_.run(sql, true, session_.options_.statement_timeout, id_);
  }
  Status queryChunks(const std::string& sql, size_t chunk_rows,
                     const PgChunkFn& on_chunk) override {
    return session_.run(sql, false, session_.options_.statement_timeout, id_, chunk_rows, &on_chunk)
        .status();
  }
  std::vector<PgNotice> takeNotices() override { return session_.takeNotices(); }
  void cancel() override { session_.cancelCaller(id_, false); }
  void disconnect() override { session_.disconnect(); }
  int serverVersion() const override { return session_.serverVersion(); }
  const std::string& redactedDsn() const override { return session_.redactedDsn(); }
  std::unique_ptr<SqlSession> caller() override { return session_.caller(); }

 private:
  PgSession& session_;
  const uint64_t id_;
};

// Replaces password=... values and URI passwords with ***.
std::string redactDsn(const std::string& dsn);

}  // namespace dbpulse::collectors
