#pragma once
// LeaderElector: with several chat-server replicas there are several dbpulse sidecars on
// one database; they elect one to run the database-wide collectors and maintenance with a
// PostgreSQL session-level advisory lock.
//
// - The lock (pg_try_advisory_lock(kLeaderLockKey) in the DSN's database) is held on a
//   session of the elector's own, or on the one it shares with the agent's local
//   collectors (LeaderElectorOptions::shared_session): a follower then holds a single
//   connection. A session-level lock survives the statements of the other users of the
//   session and their cancellation (per caller); only a lost connection loses it, and the
//   next round takes it again unless another agent did.
// - Every `period` a round confirms the lock is still held by this session (pg_locks) or
//   tries to take it. A failed round (server down, connection lost) makes this agent a
//   follower at once: it claims leadership only while PostgreSQL confirms it, so two
//   agents never both believe they lead for longer than one period.
// - A leader that dies loses the lock with its connection; a follower takes over at its
//   next round, within one period. stop() disconnects, handing over at once; a round
//   waiting on a hung server is cancelled (never blocking) and ends within the session's
//   answer_grace.
// - dbpulse_leader (1/0) and dbpulse_leader_changes_total go into the sample store.
// - `on_round(leader, changed)` runs on the elector's thread after every round.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/core/duration.h"
#include "agent/core/mutex.h"
#include "agent/core/sample_store.h"
#include "collectors/clients/postgres/pg_session.h"
#include "collectors/clients/postgres/sql_session.h"

namespace dbpulse {

// "dbpu" in ASCII: the advisory lock key, one per database.
inline constexpr int64_t kLeaderLockKey = 0x64627075;

struct LeaderElectorOptions {
  collectors::PgSessionOptions session;  // of the elector's own session
  // When set, the lock is held on this session instead (options above unused).
  std::shared_ptr<collectors::SqlSession> shared_session;
  Duration period{5000};
};

class LeaderElector {
 public:
  LeaderElector(LeaderElectorOptions options, SampleStore& store,
                std::function<void(bool leader, bool changed)> on_round = {});
  ~LeaderElector();
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Runs the first round on the calling thread (so the scheduler starts knowing the
  // answer), then the rest on a thread of its own.
  void start();
  // Ends the rounds and closes the session, releasing the lock (a shared session
  // reconnects at its next query).
  void stop();

  bool isLeader() const { return leader_.load(); }
  // One round now, on the calling thread (tests; start() uses it too).
  void round();

 private:
  void run(std::stop_token stop);
  void publish();

  const LeaderElectorOptions options_;
  SampleStore& store_;
  const std::function<void(bool, bool)> on_round_;
  const std::shared_ptr<collectors::SqlSession> session_;
  // The elector's statements, cancelled alone.
  const std::unique_ptr<collectors::SqlSession> caller_;

  std::atomic<bool> leader_{false};
  uint64_t changes_ = 0;  // only the round's thread touches these
  std::string last_error_;

  Mutex mu_;
  std::condition_variable_any cv_;
  std::jthread thread_;
};

}  // namespace dbpulse
