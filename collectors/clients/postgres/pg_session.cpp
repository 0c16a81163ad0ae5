#include "collectors/clients/postgres/pg_session.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <regex>
#include <system_error>
#include <thread>
#include <utility>

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
// TCP settings for a server that vanishes without a word (host down, network partition):
// keepalives find a dead idle connection within ~25 s, tcp_user_timeout fails a write the
// server does not acknowledge. A DSN's own values win. Unix sockets ignore them.
std::vector<std::pair<std::string, std::string>> tcpSettings(const PgSessionOptions& o) {
  const int64_t user_timeout_ms =
      std::clamp<int64_t>((o.statement_timeout + o.answer_grace).count(), 5000, 60'000);
  std::vector<std::pair<std::string, std::string>> all = {
      {"keepalives", "1"},
      {"keepalives_idle", "10"},
      {"keepalives_interval", "5"},
      {"keepalives_count", "3"},
      {"tcp_user_timeout", std::to_string(user_timeout_ms)}};
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& kv : all) {
    if (o.dsn.find(kv.first + "=") == std::string::npos) out.push_back(std::move(kv));
  }
  return out;
}

std::string buildConninfo(const PgSessionOptions& o) {
  const std::string connect_timeout_s =
      std::to_string(std::max<int64_t>(1, (o.connect_timeout.count() + 999) / 1000));
  std::string tcp_kv, tcp_uri;
  for (const auto& [k, v] : tcpSettings(o)) {
    tcp_kv += " " + k + "=" + v;
    tcp_uri += "&" + k + "=" + v;
  }
  if (o.admin_console) {
    return isUri(o.dsn) ? o.dsn + (o.dsn.find('?') == std::string::npos ? "?" : "&") +
                              "connect_timeout=" + connect_timeout_s + tcp_uri
                        : o.dsn + " connect_timeout=" + connect_timeout_s + tcp_kv;
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
    s += tcp_uri;
    if (!o.password.empty()) s += "&password=" + percentEncode(o.password);
    return s;
  }
  std::string s = o.dsn;
  s += " application_name=" + quoteConnValue(o.application_name);
  s += " connect_timeout=" + connect_timeout;
  s += " options=" + quoteConnValue(settings);
  s += tcp_kv;
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

std::string millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

}  // namespace

std::string redactDsn(const std::string& dsn) {
  static const std::regex kKv(R"((password\s*=\s*)('([^'\\]|\\.)*'|\S+))", std::regex::icase);
  static const std::regex kUri(R"(^(postgres(ql)?://[^:/@]*:)[^@]*@)", std::regex::icase);
  static const std::regex kUriParam(R"(([?&]password=)[^&]*)", std::regex::icase);
  if (!isUri(dsn)) return std::regex_replace(dsn, kKv, "$1***");
  return std::regex_replace(std::regex_replace(dsn, kUri, "$1***@"), kUriParam, "$1***");
}

// One libpq connection, non-blocking: every wait happens in poll() with a deadline.
struct PgSession::Connection {
  explicit Connection(PGconn* c) : pg(c) {}
  ~Connection() { PQfinish(pg); }  // non-blocking mode: the Terminate message never waits
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  static void onNotice(void* arg, const PGresult* res) {
    auto* self = static_cast<Connection*>(arg);
    try {
      if (self->notices.size() >= 100) return;
      const auto field = [res](int code) {
        const char* v = PQresultErrorField(res, code);
        return std::string(v ? v : "");
      };
      std::string severity = field(PG_DIAG_SEVERITY_NONLOCALIZED);
      if (severity.empty()) severity = field(PG_DIAG_SEVERITY);  // servers before 9.6
      self->notices.push_back(
          PgNotice{std::move(severity), field(PG_DIAG_SQLSTATE), field(PG_DIAG_MESSAGE_PRIMARY)});
    } catch (...) {
    }
  }

  PGconn* pg;
  std::vector<PgNotice> notices;
};

PgSession::PgSession(PgSessionOptions options)
    : options_(std::move(options)),
      conninfo_(buildConninfo(options_)),
      redacted_dsn_(redactDsn(options_.dsn)),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

PgSession::~PgSession() {
  disconnect();
  if (wake_fd_ >= 0) close(wake_fd_);
}

Status PgSession::acquire(uint64_t caller, bool cancellable) {
  MutexLock lock(state_mu_);
  const uint64_t ticket = ++next_ticket_;
  waiting_.emplace(ticket, caller);
  state_cv_.wait(lock, [&]() REQUIRES(state_mu_) {
    return !busy_ || (cancellable && cancelled_.count(ticket) > 0);
  });
  waiting_.erase(ticket);
  if (cancelled_.erase(ticket) > 0 && busy_) {
    return deadlineExceeded(redacted_dsn_ +
                            ": cancelled before it started (the session was busy with another "
                            "statement)");
  }
  busy_ = true;
  running_caller_ = caller;
  cancel_requested_ = false;
  if (wake_fd_ >= 0) {
    uint64_t drained = 0;
    (void)!read(wake_fd_, &drained, sizeof drained);
  }
  return okStatus();
}

size_t PgSession::waitingStatements() const {
  MutexLock lock(state_mu_);
  return waiting_.size();
}

void PgSession::release() {
  MutexLock lock(state_mu_);
  busy_ = false;
  running_caller_ = 0;
  cancel_requested_ = false;
  state_cv_.notify_all();
}

void PgSession::cancel() { cancelCaller(0, true); }

void PgSession::cancelCaller(uint64_t caller, bool everyone) {
  MutexLock lock(state_mu_);
  for (const auto& [ticket, who] : waiting_) {
    if (everyone || who == caller) cancelled_.insert(ticket);
  }
  state_cv_.notify_all();
  if (busy_ && (everyone || running_caller_ == caller)) {
    cancel_requested_ = true;
    if (wake_fd_ >= 0) {
      const uint64_t one = 1;
      (void)!write(wake_fd_, &one, sizeof one);
    }
  }
}

void PgSession::disconnect() {
  // Not cancellable: a running statement finishes (or hits its deadline) first.
  (void)acquire(0, false);
  conn_.reset();
  server_version_ = 0;
  release();
}

Status PgSession::dropConnection(const std::string& why) {
  last_error_ = why;
  conn_.reset();
  server_version_ = 0;
  backoff_ = backoff_.count() == 0 ? std::chrono::milliseconds(500)
                                   : std::min(backoff_ * 2, options_.max_backoff);
  next_attempt_ = std::chrono::steady_clock::now() + backoff_;
  return unavailable(last_error_);
}

PgSession::Wake PgSession::waitSocket(int fd, short events, SteadyTime deadline) {
  while (true) {
    if (cancel_requested_.load()) return Wake::kCancel;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Wake::kDeadline;
    pollfd fds[2] = {{fd, events, 0}, {wake_fd_, POLLIN, 0}};
    // Without an eventfd a cancel is noticed within 50 ms.
    const int wait_ms =
        static_cast<int>(std::min<int64_t>(left.count(), wake_fd_ >= 0 ? 1000 : 50));
    const int n = poll(fds, wake_fd_ >= 0 ? 2 : 1, wait_ms);
    if (n < 0 && errno != EINTR) return Wake::kReady;  // let libpq report the error
    if (n > 0 && fds[0].revents != 0) return Wake::kReady;
    if (n > 0 && wake_fd_ >= 0 && (fds[1].revents & POLLIN) != 0) {
      uint64_t drained = 0;
      (void)!read(wake_fd_, &drained, sizeof drained);
    }
  }
}

void PgSession::sendCancel() {
  // One request at a time: a PQcancel waiting on a stopped postmaster is not repeated.
  if (!conn_ || cancel_in_flight_->exchange(true)) return;
  PGcancel* handle = PQgetCancel(conn_->pg);
  if (handle == nullptr) {
    cancel_in_flight_->store(false);
    return;
  }
  // PQcancel opens a connection of its own with blocking I/O and cannot be given a
  // timeout (libpq 15 has no PQcancelStart): it runs on a thread of its own, so the
  // statement's thread keeps its deadline. The helper owns everything it touches.
  try {
    std::thread([handle, flag = cancel_in_flight_] {
      char ignored[256];
      PQcancel(handle, ignored, sizeof ignored);
      PQfreeCancel(handle);
      flag->store(false);
    }).detach();
  } catch (const std::system_error&) {
    PQfreeCancel(handle);
    cancel_in_flight_->store(false);
  }
}

Status PgSession::ensureConnected() {
  if (conn_ && PQstatus(conn_->pg) == CONNECTION_OK) return okStatus();
  conn_.reset();
  const auto now = std::chrono::steady_clock::now();
  if (now < next_attempt_) {
    // The message stays the same while backing off, so the scheduler logs it only once.
    return unavailable(last_error_);
  }
  PGconn* raw = PQconnectStart(conninfo_.c_str());
  if (raw == nullptr) return dropConnection(redacted_dsn_ + ": out of memory");
  auto conn = std::make_unique<Connection>(raw);
  if (PQstatus(raw) == CONNECTION_BAD) {
    return dropConnection(redacted_dsn_ + ": " + oneLine(PQerrorMessage(raw)));
  }
  // libpq enforces connect_timeout only in its blocking calls; this loop enforces it here.
  const SteadyTime deadline = now + options_.connect_timeout;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK) {
    if (st == PGRES_POLLING_FAILED) {
      return dropConnection(redacted_dsn_ + ": " + oneLine(PQerrorMessage(raw)));
    }
    const Wake w =
        waitSocket(PQsocket(raw), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
    if (w == Wake::kCancel) {
      return deadlineExceeded(redacted_dsn_ + ": cancelled while connecting");
    }
    if (w == Wake::kDeadline) {
      return dropConnection(redacted_dsn_ + ": no answer while connecting within " +
                            millis(options_.connect_timeout) + " (server hung or unreachable)");
    }
    st = PQconnectPoll(raw);
  }
  if (PQsetnonblocking(raw, 1) != 0) {
    return dropConnection(redacted_dsn_ + ": " + oneLine(PQerrorMessage(raw)));
  }
  PQsetNoticeReceiver(raw, &Connection::onNotice, conn.get());
  server_version_ = PQserverVersion(raw);
  conn_ = std::move(conn);
  backoff_ = std::chrono::milliseconds(0);
  return okStatus();
}

Result<PgRows> PgSession::query(const std::string& sql) {
  return run(sql, false, options_.statement_timeout, 0);
}

Result<PgRows> PgSession::query(const std::string& sql, std::chrono::milliseconds server_timeout) {
  return run(sql, false, server_timeout, 0);
}

Result<PgRows> PgSession::queryParams(const std::string& sql, const SqlParams& params) {
  return run(sql, true, options_.statement_timeout, 0, 0, nullptr, &params);
}

std::unique_ptr<SqlSession> PgSession::caller() { return std::make_unique<PgCaller>(*this); }

Result<PgRows> PgSession::querySingle(const std::string& sql) {
  return run(sql, true, options_.statement_timeout, 0);
}

Status PgSession::queryChunks(const std::string& sql, size_t chunk_rows,
                              const PgChunkFn& on_chunk) {
  return run(sql, false, options_.statement_timeout, 0, chunk_rows, &on_chunk).status();
}

Result<PgRows> PgSession::run(const std::string& sql, bool single_statement,
                              std::chrono::milliseconds server_timeout, uint64_t caller,
                              size_t chunk_rows, const PgChunkFn* on_chunk,
                              const SqlParams* params) {
  if (Status s = acquire(caller, true); !s.ok()) return s;
  Status connected = ensureConnected();
  Result<PgRows> out = connected.ok() ? execute(sql, single_statement, server_timeout,
                                                std::max<size_t>(1, chunk_rows), on_chunk, params)
                                      : Result<PgRows>(connected);
  release();
  return out;
}

Result<PgRows> PgSession::execute(const std::string& sql, bool single_statement,
                                  std::chrono::milliseconds server_timeout, size_t chunk_rows,
                                  const PgChunkFn* on_chunk, const SqlParams* params) {
  PGconn* c = conn_->pg;
  conn_->notices.clear();
  // Parameters as text, the server converts them; NULL for nullopt.
  std::vector<const char*> values;
  if (params != nullptr) {
    for (const auto& p : *params) values.push_back(p ? p->c_str() : nullptr);
  }
  // PQsendQueryParams (even without parameters) uses the extended protocol: one statement.
  const int sent =
      single_statement
          ? PQsendQueryParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr,
                              values.empty() ? nullptr : values.data(), nullptr, nullptr, 0)
          : PQsendQuery(c, sql.c_str());
  if (sent == 0) {
    return dropConnection(redacted_dsn_ + ": connection lost: " + oneLine(PQerrorMessage(c)));
  }
  // One row per PGresult, converted and freed at once: the result is never held twice.
  // (Refused only when called too late; libpq then answers with whole results, read the
  // same way below.)
  (void)PQsetSingleRowMode(c);
  // The console ignores statement_timeout: its own limit is the whole wait. Otherwise the
  // server ends the statement at server_timeout and answers; no answer answer_grace later
  // means it is not running at all.
  const std::chrono::milliseconds budget =
      options_.admin_console ? server_timeout : server_timeout + options_.answer_grace;
  const SteadyTime deadline = std::chrono::steady_clock::now() + budget;
  bool cancel_sent = false;
  SteadyTime cancel_deadline{};

  // Waits for input (or for the query to be flushed); an error Status ends the statement.
  auto awaitSocket = [&](short events) -> Status {
    while (true) {
      const SteadyTime until = cancel_sent ? std::min(deadline, cancel_deadline) : deadline;
      const Wake w = waitSocket(PQsocket(c), events, until);
      if (w == Wake::kReady) return okStatus();
      if (w == Wake::kCancel) {
        cancel_requested_ = false;
        if (!cancel_sent) {
          cancel_sent = true;
          cancel_deadline = std::chrono::steady_clock::now() + options_.answer_grace;
          sendCancel();
        }
        continue;
      }
      if (cancel_sent && std::chrono::steady_clock::now() >= cancel_deadline &&
          cancel_deadline < deadline) {
        return dropConnection(redacted_dsn_ +
                              ": cancelled, and the server did not end the "
                              "statement within " +
                              millis(options_.answer_grace) +
                              " (server hung or unreachable); connection dropped");
      }
      if (options_.admin_console) {
        // The console has no statement_timeout: this is its timeout (pgbouncer_up 0 all
        // the same). A result may still arrive: start afresh rather than read it later.
        const std::string why = redacted_dsn_ + ": pgbouncer console did not answer '" + sql +
                                "' within " + millis(budget);
        (void)dropConnection(why);
        return deadlineExceeded(why);
      }
      return dropConnection(redacted_dsn_ + ": no answer within " + millis(budget) +
                            " (statement_timeout " + millis(server_timeout) + " + " +
                            millis(options_.answer_grace) +
                            "): server hung or unreachable; connection dropped");
    }
  };

  while (true) {
    const int flushed = PQflush(c);
    if (flushed == 0) break;
    if (flushed < 0) {
      return dropConnection(redacted_dsn_ + ": connection lost: " + oneLine(PQerrorMessage(c)));
    }
    if (Status s = awaitSocket(POLLOUT); !s.ok()) return s;
  }

  PgRows rows;
  Status error;
  Status chunk_error;      // the first error of on_chunk: later rows are dropped
  bool in_result = false;  // rows of a result set are arriving
  auto handOver = [&] {
    if (on_chunk != nullptr && chunk_error.ok()) chunk_error = (*on_chunk)(rows);
    rows.rows.clear();
  };
  while (true) {
    while (PQisBusy(c) != 0) {
      if (Status s = awaitSocket(POLLIN); !s.ok()) return s;
      if (PQconsumeInput(c) == 0) {
        return dropConnection(redacted_dsn_ + ": connection lost: " + oneLine(PQerrorMessage(c)));
      }
    }
    PGresult* res = PQgetResult(c);
    if (res == nullptr) break;
    const ExecStatusType st = PQresultStatus(res);
    if ((st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) && error.ok()) {
      const int nfields = PQnfields(res);
      if (!in_result) {
        // A text with several statements answers with several results: the last one counts.
        rows = PgRows{};
        rows.columns.reserve(static_cast<size_t>(nfields));
        for (int col = 0; col < nfields; ++col) rows.columns.emplace_back(PQfname(res, col));
        in_result = true;
      }
      // Single-row mode: one row per PGRES_SINGLE_TUPLE, then an empty PGRES_TUPLES_OK.
      for (int r = 0; r < PQntuples(res); ++r) {
        auto& row = rows.rows.emplace_back();
        row.reserve(static_cast<size_t>(nfields));
        for (int col = 0; col < nfields; ++col) {
          if (PQgetisnull(res, r, col)) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(std::string(PQgetvalue(res, r, col),
                                         static_cast<size_t>(PQgetlength(res, r, col))));
          }
        }
        if (on_chunk != nullptr && rows.rows.size() >= chunk_rows) handOver();
      }
      if (st == PGRES_TUPLES_OK) {
        in_result = false;
        if (on_chunk != nullptr) handOver();
      }
    } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY &&
               error.ok()) {
      const char* state_field = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      const std::string state = state_field != nullptr ? state_field : "";
      const std::string message = oneLine(PQresultErrorMessage(res));
      if (state == "57014" || state == "55P03") {
        // query_canceled (statement_timeout or our cancel), lock_not_available.
        error = deadlineExceeded(message);
      } else if (state == "42501") {
        error = permissionDenied(message);
      } else if (options_.admin_console) {
        // pgbouncer's console answers most refusals with 08P01 on a usable connection.
        error = invalidArgument(message);
      } else if (state.empty() || state.rfind("57", 0) == 0 || state.rfind("08", 0) == 0) {
        // Class 57 (admin shutdown, crash shutdown, cannot connect now), 08 (connection
        // exception) or libpq's own failure: the session is gone, reconnect later.
        error = unavailable(message);
      } else {
        error = invalidArgument(message);
      }
    }
    PQclear(res);
  }
  if (PQstatus(c) != CONNECTION_OK) {
    return dropConnection(redacted_dsn_ + ": connection lost: " + oneLine(PQerrorMessage(c)));
  }
  if (error.code() == StatusCode::kUnavailable) {
    return dropConnection(redacted_dsn_ + ": " + error.message());
  }
  if (!error.ok()) return error;
  if (on_chunk != nullptr) {
    if (!chunk_error.ok()) return chunk_error;
    if (rows.columns.empty()) handOver();  // no result set at all (e.g. a SET)
    return chunk_error.ok() ? Result<PgRows>(PgRows{}) : Result<PgRows>(chunk_error);
  }
  return rows;
}

std::vector<PgNotice> PgSession::takeNotices() {
  (void)acquire(0, false);
  std::vector<PgNotice> out;
  if (conn_) out = std::exchange(conn_->notices, {});
  release();
  return out;
}

}  // namespace dbpulse::collectors
