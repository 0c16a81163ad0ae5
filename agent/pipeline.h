#pragma once
// Pipeline: what one configuration schedules — the PostgreSQL sessions, the collectors and
// the scheduler that runs them — built by buildPipeline() and taken out of service by
// retirePipeline(), the one retire step both Agent::reload() and Agent::stop() use.
// Also the options every PostgreSQL client of the agent derives from the config.

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agent/advisor.h"
#include "agent/config.h"
#include "agent/core/clock.h"
#include "agent/core/sample_store.h"
#include "agent/cron.h"
#include "agent/maintenance.h"
#include "agent/retirer.h"
#include "agent/scheduler.h"
#include "collectors/clients/postgres/pg_session.h"

namespace dbpulse {

namespace collectors {
class StatementsCollector;
class LocksCollector;
class SizeCollector;
}  // namespace collectors

struct Pipeline {
  std::map<std::string, std::shared_ptr<collectors::PgSession>> postgres;  // by group
  // The local group's session when the leader elector shares it (see buildPipeline): it
  // outlives the pipeline, so retiring the pipeline leaves it connected.
  std::shared_ptr<collectors::PgSession> shared_session;
  // Sessions that only leader-only collectors use: a follower closes them.
  std::vector<collectors::PgSession*> leader_sessions;
  std::unique_ptr<collectors::PgSession> pgbouncer;
  std::unique_ptr<Scheduler> scheduler;
  std::set<std::string> collectors;  // names scheduled
  // Collectors whose details the admin API shows; owned by the scheduler, null when off.
  const collectors::StatementsCollector* statements = nullptr;
  const collectors::LocksCollector* locks = nullptr;
  const collectors::SizeCollector* size = nullptr;
  ~Pipeline() {
    // The scheduler's collectors hold references to the sessions: scheduler goes first.
    scheduler.reset();
    postgres.clear();
    pgbouncer.reset();
  }
};

// The collectors `config` enables, in catalogue order, on a scheduler that is not started;
// with a DSN and some database collector, the hourly `advisor` job too, which takes
// `advisor_gate` (may be null: the CLI runs alone) like the admin routes do.
// `shared_session` (may be null) serves localPostgresGroup(config): the leader elector
// holds its lock on it, so a follower needs one PostgreSQL connection in all.
std::shared_ptr<Pipeline> buildPipeline(
    const Config& config, SampleStore& store, const Clock& clock,
    std::shared_ptr<AdvisorGate> advisor_gate,
    std::shared_ptr<collectors::PgSession> shared_session = nullptr);

// The session group of the enabled PostgreSQL collectors that run on every agent (not only
// on the leader): "fast" for `connections` by default; "" when there is none.
std::string localPostgresGroup(const Config& config);
// sessionOptions() for the members of `group` (none when "").
collectors::PgSessionOptions groupSessionOptions(const Config& config, const std::string& group);

// Stops `pipeline`'s scheduler (null is fine). When it stopped, the PostgreSQL sessions are
// closed and the pipeline is freed once its last reader lets go; when a collector did not
// return within `grace`, `retired` keeps the pipeline until its threads have left (a
// warning says so) and false is returned. The caller serialises calls on `retired`.
bool retirePipeline(Retirer<Pipeline>& retired, std::shared_ptr<Pipeline> pipeline, Duration grace);

// Options of the PostgreSQL session shared by `members` (empty: one-off clients — the
// advisor, maintenance, leader election): its limits nest inside the shortest member
// timeout, so a run that meets a hung server reports the cause itself.
collectors::PgSessionOptions sessionOptions(const Config& config, const std::string& dsn,
                                            const std::vector<const CollectorSection*>& members);
AdvisorOptions advisorOptions(const Config& config);
MaintenanceOptions maintenanceOptions(const Config& config, const CronSchedule& window);

}  // namespace dbpulse
