#include "collectors/postgres/pg_session.h"

#include <libpq-fe.h>
#include <poll.h>

#include <pqxx/pqxx>
#include <regex>

#include "agent/core/text.h"

namespace dbpulse::collectors {
namespace {

bool isUri(const std::string& dsn) {
  return dsn.rfind("postgres://", 0) == 0 || dsn.rfind("postgresql://", 0) == 0;
}

std::string quoteConnValue(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// Adds our parameters to the operator's DSN. Settings go in `options` (-c ...) so they
// hold from the first statement and survive any pooler-less reconnect.
std::string buildConninfo(const PgSessionOptions& o) {
  const std::string connect_timeout_s =
      std::to_string(std::max<int64_t>(1, (o.connect_timeout.count() + 999) / 1000));
  if (o.admin_console) {
    return isUri(o.dsn) ? o.dsn + (o.dsn.find('?') == std::string::npos ? "?" : "&") +
                              "connect_timeout=" + connect_timeout_s
                        : o.dsn + " connect_timeout=" + connect_timeout_s;
  }
  const std::string settings =
      "-c statement_timeout=" + std::to_string(o.statement_timeout.count()) +
      " -c lock_timeout=" + std::to_string(o.lock_timeout.count()) +
      (o.read_only ? " -c default_transaction_read_only=on" : "");
  const std::string connect_timeout =
      std::to_string(std::max<int64_t>(1, (o.connect_timeout.count() + 999) / 1000));
  if (isUri(o.dsn)) {
    std::string s = o.dsn;
    char sep = s.find('?') == std::string::npos ? '?' : '&';
    s += sep;
    s += "application_name=" + percentEncode(o.application_name);
    s += "&connect_timeout=" + connect_timeout;
    s += "&options=" + percentEncode(settings);
    if (!o.password.empty()) s += "&password=" + percentEncode(o.password);
    return s;
  }
  std::string s = o.dsn;
  s += " application_name=" + quoteConnValue(o.application_name);
  s += " connect_timeout=" + connect_timeout;
  s += " options=" + quoteConnValue(settings);
  if (!o.password.empty()) s += " password=" + quoteConnValue(o.password);
  return s;
}

std::string oneLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return s;
}

}  // namespace

// libpqxx for PostgreSQL; plain libpq for pgbouncer's admin console, which libpqxx 6
// refuses at connect ("Unsupported server version; 9.0 is the minimum": the console reports
// pgbouncer's own version as server_version).
struct PgSession::Connection {
  // Keeps the server's notices (instead of libpqxx's default: print them on stderr).
  class NoticeKeeper final : public pqxx::errorhandler {
   public:
    explicit NoticeKeeper(pqxx::connection_base& c) : pqxx::errorhandler(c) {}
    bool operator()(const char msg[]) noexcept override {
      try {
        if (notices.size() < 100) notices.emplace_back(msg);
      } catch (...) {
      }
      return false;
    }
    std::vector<std::string> notices;
  };

  Connection(const std::string& conninfo, bool admin_console) {
    if (!admin_console) {
      conn = std::make_unique<pqxx::connection>(conninfo);
      notices = std::make_unique<NoticeKeeper>(*conn);
      return;
    }
    console = PQconnectdb(conninfo.c_str());
    if (PQstatus(console) != CONNECTION_OK) {
      const std::string why = console != nullptr ? PQerrorMessage(console) : "out of memory";
      PQfinish(console);
      throw pqxx::broken_connection(why);
    }
  }
  ~Connection() {
    notices.reset();  // unregisters from the connection first
    if (console != nullptr) PQfinish(console);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  bool isOpen() const { return conn ? conn->is_open() : PQstatus(console) == CONNECTION_OK; }
  int serverVersion() const { return conn ? conn->server_version() : PQserverVersion(console); }

  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<NoticeKeeper> notices;
  PGconn* console = nullptr;
};

namespace {

// One SHOW on pgbouncer's console. The console ignores statement_timeout, so the wait is
// bounded here (a stuck pooler must not hold the collector's thread). `broken` is set when
// the connection is unusable afterwards.
Result<PgRows> consoleQuery(PGconn* c, const std::string& sql, std::chrono::milliseconds timeout,
                            bool& broken) {
  broken = false;
  if (PQsendQuery(c, sql.c_str()) == 0) {
    broken = true;
    return unavailable(oneLine(PQerrorMessage(c)));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (PQconsumeInput(c) == 0) {
      broken = true;
      return unavailable(oneLine(PQerrorMessage(c)));
    }
    if (PQisBusy(c) == 0) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      broken = true;  // a result may still arrive: start afresh rather than read it later
      return deadlineExceeded("pgbouncer console did not answer '" + sql + "' within " +
                              std::to_string(timeout.count()) + " ms");
    }
    pollfd pfd{PQsocket(c), POLLIN, 0};
    poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
  }
  PgRows rows;
  Status error;
  while (PGresult* res = PQgetResult(c)) {
    const ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK && error.ok()) {
      rows = PgRows{};
      for (int col = 0; col < PQnfields(res); ++col) rows.columns.emplace_back(PQfname(res, col));
      rows.rows.reserve(static_cast<size_t>(PQntuples(res)));
      for (int r = 0; r < PQntuples(res); ++r) {
        auto& out = rows.rows.emplace_back();
        for (int col = 0; col < PQnfields(res); ++col) {
          if (PQgetisnull(res, r, col)) {
            out.emplace_back(std::nullopt);
          } else {
            out.emplace_back(std::string(PQgetvalue(res, r, col),
                                         static_cast<size_t>(PQgetlength(res, r, col))));
          }
        }
      }
    } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && error.ok()) {
      const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      const std::string message = oneLine(PQresultErrorMessage(res));
      error = state != nullptr && std::string(state) == "57014" ? deadlineExceeded(message)
                                                                : invalidArgument(message);
    }
    PQclear(res);
  }
  if (PQstatus(c) != CONNECTION_OK) {
    broken = true;
    return unavailable("connection lost: " + oneLine(PQerrorMessage(c)));
  }
  if (!error.ok()) return error;
  return rows;
}

}  // namespace

std::string redactDsn(const std::string& dsn) {
  static const std::regex kKv(R"((password\s*=\s*)('([^'\\]|\\.)*'|\S+))", std::regex::icase);
  static const std::regex kUri(R"(^(postgres(ql)?://[^:/@]*:)[^@]*@)", std::regex::icase);
  static const std::regex kUriParam(R"(([?&]password=)[^&]*)", std::regex::icase);
  if (!isUri(dsn)) return std::regex_replace(dsn, kKv, "$1***");
  return std::regex_replace(std::regex_replace(dsn, kUri, "$1***@"), kUriParam, "$1***");
}

PgSession::PgSession(PgSessionOptions options)
    : options_(std::move(options)),
      conninfo_(buildConninfo(options_)),
      redacted_dsn_(redactDsn(options_.dsn)) {}

PgSession::~PgSession() { disconnect(); }

void PgSession::disconnect() {
  // use_mu_ first: a query running on conn_ finishes (or is cancelled) before it goes.
  std::lock_guard use_lock(use_mu_);
  std::lock_guard conn_lock(conn_mu_);
  conn_.reset();
  server_version_ = 0;
}

int PgSession::serverVersion() const { return server_version_; }

void PgSession::dropConnectionLocked(const std::string& why) {
  last_error_ = why;
  {
    std::lock_guard conn_lock(conn_mu_);
    conn_.reset();
    server_version_ = 0;
  }
  backoff_ = backoff_.count() == 0 ? std::chrono::milliseconds(500)
                                   : std::min(backoff_ * 2, options_.max_backoff);
  next_attempt_ = std::chrono::steady_clock::now() + backoff_;
}

Status PgSession::ensureConnectedLocked() {
  {
    std::lock_guard conn_lock(conn_mu_);
    if (conn_ && conn_->isOpen()) return okStatus();
  }
  const auto now = std::chrono::steady_clock::now();
  if (now < next_attempt_) {
    // The message stays the same while backing off, so the scheduler logs it only once.
    return unavailable(last_error_);
  }
  try {
    auto conn = std::make_unique<Connection>(conninfo_, options_.admin_console);
    std::lock_guard conn_lock(conn_mu_);
    server_version_ = conn->serverVersion();
    conn_ = std::move(conn);
    backoff_ = std::chrono::milliseconds(0);
    return okStatus();
  } catch (const std::exception& e) {
    dropConnectionLocked(redacted_dsn_ + ": " + oneLine(e.what()));
    return unavailable(last_error_);
  }
}

Result<PgRows> PgSession::query(const std::string& sql) { return run(sql, false); }

Result<PgRows> PgSession::querySingle(const std::string& sql) { return run(sql, true); }

Result<PgRows> PgSession::run(const std::string& sql, bool single_statement) {
  std::lock_guard use_lock(use_mu_);
  if (Status s = ensureConnectedLocked(); !s.ok()) return s;
  if (conn_->console != nullptr) {
    bool broken = false;
    auto rows = consoleQuery(conn_->console, sql, options_.statement_timeout, broken);
    if (broken) {
      dropConnectionLocked(redacted_dsn_ + ": " + rows.status().message());
      if (rows.status().code() == StatusCode::kUnavailable) return unavailable(last_error_);
    }
    return rows;
  }
  try {
    conn_->notices->notices.clear();
    pqxx::nontransaction tx(*conn_->conn);
    // exec_params without parameters still goes through PQexecParams (extended protocol).
    pqxx::result r = single_statement ? tx.exec_params(sql) : tx.exec(sql);
    PgRows rows;
    rows.columns.reserve(r.columns());
    for (pqxx::row::size_type c = 0; c < r.columns(); ++c)
      rows.columns.emplace_back(r.column_name(c));
    rows.rows.reserve(r.size());
    for (const auto& row : r) {
      auto& out = rows.rows.emplace_back();
      out.reserve(row.size());
      for (const auto& field : row) {
        if (field.is_null()) {
          out.emplace_back(std::nullopt);
        } else {
          out.emplace_back(std::string(field.c_str(), field.size()));
        }
      }
    }
    return rows;
  } catch (const pqxx::broken_connection& e) {
    dropConnectionLocked(redacted_dsn_ + ": connection lost: " + oneLine(e.what()));
    return unavailable(last_error_);
  } catch (const pqxx::insufficient_privilege& e) {
    return permissionDenied(oneLine(e.what()));
  } catch (const pqxx::sql_error& e) {
    const std::string state = e.sqlstate();
    // 57014 query_canceled: statement_timeout or our cancel(); 55P03 lock_not_available.
    if (state == "57014" || state == "55P03") return deadlineExceeded(oneLine(e.what()));
    // Class 57 (admin shutdown, crash shutdown, cannot connect now) and 08 (connection
    // exception): the session is gone, reconnect later.
    if (state.rfind("57", 0) == 0 || state.rfind("08", 0) == 0) {
      dropConnectionLocked(redacted_dsn_ + ": " + oneLine(e.what()));
      return unavailable(last_error_);
    }
    return invalidArgument(oneLine(e.what()));
  } catch (const std::exception& e) {
    // Unknown failure: the connection state is unknown too, so start afresh.
    dropConnectionLocked(redacted_dsn_ + ": " + oneLine(e.what()));
    return unavailable(last_error_);
  }
}

std::vector<std::string> PgSession::takeNotices() {
  std::lock_guard use_lock(use_mu_);
  std::lock_guard conn_lock(conn_mu_);
  if (!conn_ || !conn_->notices) return {};
  return std::exchange(conn_->notices->notices, {});
}

void PgSession::cancel() {
  std::lock_guard conn_lock(conn_mu_);
  if (!conn_) return;
  if (conn_->console != nullptr) {
    if (PGcancel* handle = PQgetCancel(conn_->console)) {
      char ignored[256];
      PQcancel(handle, ignored, sizeof ignored);
      PQfreeCancel(handle);
    }
    return;
  }
  try {
    conn_->conn->cancel_query();
  } catch (const std::exception&) {
    // Nothing running or the connection is gone: either way there is nothing to cancel.
  }
}

}  // namespace dbpulse::collectors
