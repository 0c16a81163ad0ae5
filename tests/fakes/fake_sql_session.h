#pragma once
// FakeSqlSession: a SqlSession with scripted answers, for unit tests of the code around a
// query (collectors' collect(), maintenance, leader election) without a server.
//
//   fakes::FakeSqlSession db;
//   db.answer("FROM pg_stat_database", rows);               // any SQL containing the text
//   db.answer("SHOW server_version_num", permissionDenied("..."));
//   ... code under test runs db.query(...) ...
//   EXPECT_EQ(db.statements().size(), 2u);                   // what it ran, in order
//
// A statement gets the first script whose fragment it contains (in the order scripted).
// A script given several answers hands them out in turn and then keeps the last one. A
// statement no script matches gets the default answer (empty rows; setDefault() changes
// it, e.g. to an error to catch unexpected SQL). failEverything() answers every statement
// with one error (the server is down) until cleared. Handles from caller() share the
// scripts and the record; they are numbered 1, 2, ... in creation order (this one is 0),
// and cancelled() lists which handles cancel() was called on. Thread-safe.

#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collectors/clients/postgres/sql_session.h"

namespace dbpulse::fakes {

class FakeSqlSession final : public collectors::SqlSession {
 public:
  // One statement as the code under test sent it.
  struct Statement {
    std::string sql;
    collectors::SqlParams params;
    std::string kind;  // "query", "params", "single", "chunks", "timeout"
  };

  FakeSqlSession() : state_(std::make_shared<State>()) {}

  // Scripts the answers for SQL containing `fragment`.
  void answer(std::string fragment, std::vector<Result<collectors::PgRows>> answers) {
    std::lock_guard lock(state_->mu);
    state_->scripts.push_back({std::move(fragment), {answers.begin(), answers.end()}});
  }
  void answer(std::string fragment, collectors::PgRows rows) {
    answer(std::move(fragment), std::vector<Result<collectors::PgRows>>{std::move(rows)});
  }
  void answer(std::string fragment, Status error) {
    answer(std::move(fragment), std::vector<Result<collectors::PgRows>>{std::move(error)});
  }
  void setDefault(Result<collectors::PgRows> answer) {
    std::lock_guard lock(state_->mu);
    state_->fallback = std::move(answer);
  }
  // Every statement fails with `error` (a down server) until clearFailure().
  void failEverything(Status error) {
    std::lock_guard lock(state_->mu);
    state_->failure = std::move(error);
  }
  void clearFailure() {
    std::lock_guard lock(state_->mu);
    state_->failure.reset();
  }
  // A statement containing `fragment` makes the server send `what`: takeNotices() after
  // it returns it (and every other notice of that statement).
  void notice(std::string fragment, collectors::PgNotice what) {
    std::lock_guard lock(state_->mu);
    state_->notice_rules.emplace_back(std::move(fragment), std::move(what));
  }
  void setServerVersion(int v) {
    std::lock_guard lock(state_->mu);
    state_->server_version = v;
  }

  std::vector<Statement> statements() const {
    std::lock_guard lock(state_->mu);
    return state_->record;
  }
  // How many recorded statements contain `fragment`.
  size_t count(const std::string& fragment) const {
    std::lock_guard lock(state_->mu);
    return static_cast<size_t>(std::count_if(
        state_->record.begin(), state_->record.end(),
        [&](const Statement& s) { return s.sql.find(fragment) != std::string::npos; }));
  }
  // The handles cancel() was called on, in call order (0 = this session itself).
  std::vector<int> cancelled() const {
    std::lock_guard lock(state_->mu);
    return state_->cancelled;
  }
  int disconnects() const {
    std::lock_guard lock(state_->mu);
    return state_->disconnects;
  }

  // SqlSession
  Result<collectors::PgRows> query(const std::string& sql) override {
    return run(sql, {}, "query");
  }
  Result<collectors::PgRows> query(const std::string& sql, std::chrono::milliseconds) override {
    return run(sql, {}, "timeout");
  }
  Result<collectors::PgRows> queryParams(const std::string& sql,
                                         const collectors::SqlParams& params) override {
    return run(sql, params, "params");
  }
  Result<collectors::PgRows> querySingle(const std::string& sql) override {
    return run(sql, {}, "single");
  }
  Status queryChunks(const std::string& sql, size_t chunk_rows,
                     const collectors::PgChunkFn& on_chunk) override {
    auto rows = run(sql, {}, "chunks");
    if (!rows.ok()) return rows.status();
    const size_t step = std::max<size_t>(1, chunk_rows);
    size_t at = 0;
    do {
      collectors::PgRows chunk;
      chunk.columns = rows->columns;
      for (size_t i = at; i < std::min(rows->rows.size(), at + step); ++i) {
        chunk.rows.push_back(rows->rows[i]);
      }
      at += step;
      if (Status s = on_chunk(chunk); !s.ok()) return s;
    } while (at < rows->rows.size());
    return okStatus();
  }
  std::vector<collectors::PgNotice> takeNotices() override {
    std::lock_guard lock(state_->mu);
    return std::exchange(state_->notices, {});
  }
  void cancel() override {
    std::lock_guard lock(state_->mu);
    state_->cancelled.push_back(id_);
  }
  void disconnect() override {
    std::lock_guard lock(state_->mu);
    ++state_->disconnects;
  }
  int serverVersion() const override {
    std::lock_guard lock(state_->mu);
    return state_->server_version;
  }
  const std::string& redactedDsn() const override { return state_->dsn; }
  std::unique_ptr<collectors::SqlSession> caller() override {
    int id = 0;
    {
      std::lock_guard lock(state_->mu);
      id = ++state_->handles;
    }
    return std::unique_ptr<collectors::SqlSession>(new FakeSqlSession(state_, id));
  }

 private:
  struct Script {
    std::string fragment;
    std::deque<Result<collectors::PgRows>> answers;
  };
  struct State {
    mutable std::mutex mu;
    std::vector<Script> scripts;
    Result<collectors::PgRows> fallback = collectors::PgRows{};
    std::optional<Status> failure;
    std::vector<Statement> record;
    std::vector<std::pair<std::string, collectors::PgNotice>> notice_rules;
    std::vector<collectors::PgNotice> notices;  // the last statement's
    int server_version = 150000;
    int disconnects = 0;
    int handles = 0;
    std::vector<int> cancelled;
    const std::string dsn = "host=fake dbname=chat";
  };

  FakeSqlSession(std::shared_ptr<State> state, int id) : state_(std::move(state)), id_(id) {}

  Result<collectors::PgRows> run(const std::string& sql, const collectors::SqlParams& params,
                                 const char* kind) {
    std::lock_guard lock(state_->mu);
    state_->record.push_back({sql, params, kind});
    state_->notices.clear();
    for (const auto& [fragment, n] : state_->notice_rules) {
      if (sql.find(fragment) != std::string::npos) state_->notices.push_back(n);
    }
    if (state_->failure) return *state_->failure;
    for (auto& s : state_->scripts) {
      if (sql.find(s.fragment) == std::string::npos) continue;
      if (s.answers.empty()) break;
      Result<collectors::PgRows> out = s.answers.front();
      if (s.answers.size() > 1) s.answers.pop_front();
      return out;
    }
    return state_->fallback;
  }

  const std::shared_ptr<State> state_;
  const int id_ = 0;
};

}  // namespace dbpulse::fakes
