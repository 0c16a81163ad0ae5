#pragma once
// Pipeline: what one configuration schedules — the clients (PostgreSQL sessions by group and
// the others, made by kind through the client registry in pipeline.cpp), the collectors of
// the catalogue and the scheduler that runs them — built by buildPipeline() and taken out of
// service by retirePipeline(), the one retire step both Agent::reload() and Agent::stop() use.
// Also the options every PostgreSQL client of the agent derives from the config.

#include <any>
#include <map>
#include <memory>
#include <optional>
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
#include "collectors/catalog.h"
#include "collectors/clients/postgres/pg_session.h"

namespace dbpulse {

struct Pipeline {
  std::map<std::string, std::shared_ptr<collectors::PgSession>> postgres;  // by group
  // The local group's session when the leader elector shares it (see buildPipeline): it
  // outlives the pipeline, so retiring the pipeline leaves it connected.
  std::shared_ptr<collectors::PgSession> shared_session;
  // Sessions that only leader-only collectors use: a follower closes them.
  std::vector<collectors::PgSession*> leader_sessions;
  // The clients of the other kinds, made once by their registration (pipeline.cpp).
  std::map<collectors::ClientKind, collectors::Client> clients;
  std::unique_ptr<Scheduler> scheduler;
  std::set<std::string> collectors;  // names scheduled
  // The scheduled collectors that keep details for the admin API, by name; owned by the
  // scheduler.
  std::map<std::string, const collectors::DetailsProvider*> details_providers;

  // The details of collector `name` (see its DetailsProvider) when it is scheduled here and
  // they are a T; nullopt otherwise.
  template <typename T>
  std::optional<T> details(const std::string& name) const {
    auto it = details_providers.find(name);
    if (it == details_providers.end()) return std::nullopt;
    std::any d = it->second->details();
    if (T* v = std::any_cast<T>(&d)) return std::move(*v);
    return std::nullopt;
  }

  ~Pipeline() {
    // The scheduler's collectors hold references to the clients: scheduler goes first.
    scheduler.reset();
    postgres.clear();
    clients.clear();
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
