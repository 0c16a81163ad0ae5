#pragma once
// SqlSession: the one narrow door to PostgreSQL for everything that runs SQL (collectors,
// the index advisor, maintenance, leader election). PgSession (pg_session.h) is the real
// one, over libpq; tests/fakes/fake_sql_session.h scripts answers per statement, so the
// glue around a query (parsing, caching, error mapping, retries) is unit-tested without a
// server.
//
// Contract every implementation keeps:
//  * Statements run under the session's statement_timeout (PgSession sets it on connect;
//    query(sql, server_timeout) is for a statement the caller put under its own).
//  * Errors: Unavailable (cannot connect, connection lost, backing off, no answer),
//    DeadlineExceeded (statement_timeout or cancel), PermissionDenied (missing privilege),
//    InvalidArgument (SQL error). No function throws.
//  * Threading: any thread; statements of different users of one session run one after
//    the other. cancel() never blocks and ends only this handle's statements (the one it
//    runs or waits to start), never another user's: a handle from caller() is one user.
//  * Values are bound with queryParams(), never pasted into SQL text.
// Rows come back as PgRows (plain strings), read with ResultReader (result_reader.h).

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/status.h"
#include "collectors/clients/postgres/pg_rows.h"

namespace dbpulse::collectors {

// Receives the next rows of a result (`columns` always set; at most the chunk size of
// rows). An error stops the hand-over: the statement's remaining rows are read and dropped
// and queryChunks() returns that error.
using PgChunkFn = std::function<Status(const PgRows& chunk)>;

// A statement's parameters, $1 first, as text (nullopt is SQL NULL).
using SqlParams = std::vector<std::optional<std::string>>;

// A NOTICE or WARNING the server sent. severity and sqlstate are never translated, so
// callers classify by them; message is in the server's lc_messages.
struct PgNotice {
  std::string severity;  // "WARNING", "NOTICE", ... (PG_DIAG_SEVERITY_NONLOCALIZED)
  std::string sqlstate;  // e.g. "55P03" lock_not_available; "01000" a plain warning
  std::string message;   // the primary message, one line
};

class SqlSession {
 public:
  virtual ~SqlSession() = default;

  // One statement (or several separated by ';', the simple protocol: only for dbpulse's
  // own SQL).
  virtual Result<PgRows> query(const std::string& sql) = 0;
  // For a statement the caller put under a statement_timeout of its own (SET
  // statement_timeout = server_timeout): the client waits that long + its grace.
  virtual Result<PgRows> query(const std::string& sql,
                               std::chrono::milliseconds server_timeout) = 0;
  // One statement with $1..$n bound to `params` (text, the server converts), over the
  // extended protocol: a value is never parsed as SQL.
  virtual Result<PgRows> queryParams(const std::string& sql, const SqlParams& params) = 0;
  // Exactly one statement over the extended protocol: a second one hidden after a ';' is
  // rejected by the server (InvalidArgument) instead of run. For SQL from outside dbpulse.
  virtual Result<PgRows> querySingle(const std::string& sql) = 0;
  // Like query() for one statement, but the rows go to `on_chunk` in chunks of at most
  // `chunk_rows` (> 0) as they arrive. `on_chunk` runs on this thread while the session is
  // held: it must not query the session.
  virtual Status queryChunks(const std::string& sql, size_t chunk_rows,
                             const PgChunkFn& on_chunk) = 0;

  // The server's notices and warnings since the last statement, oldest first.
  virtual std::vector<PgNotice> takeNotices() = 0;

  // Ends this handle's running or waiting statement (DeadlineExceeded for it). Never blocks.
  virtual void cancel() = 0;
  // Closes the connection; the next statement reconnects.
  virtual void disconnect() = 0;

  // server_version_num of the connected server (e.g. 150004); 0 while not connected.
  virtual int serverVersion() const = 0;
  // The DSN with any password replaced by "***", for logs and errors.
  virtual const std::string& redactedDsn() const = 0;

  // Another user's handle on the same session: same connection, same statement queue, a
  // cancel() of its own. This session must outlive it.
  virtual std::unique_ptr<SqlSession> caller() = 0;
};

// server_version_num of the session's server (e.g. 150004). Before the first statement the
// session is not connected and does not know it: then this asks the server
// (`SHOW server_version_num`), which also connects. Errors are the session's.
Result<int> serverVersionNum(SqlSession& session);

}  // namespace dbpulse::collectors
