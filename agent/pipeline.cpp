#include "agent/pipeline.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "collectors/catalog.h"
#include "collectors/postgres/locks_collector.h"
#include "collectors/postgres/size_collector.h"
#include "collectors/postgres/statements_collector.h"

namespace dbpulse {

// Options of the PostgreSQL session shared by `members`. Its limits nest inside the
// shortest member timeout T, so a run that meets a hung or unreachable server reports the
// cause itself (pg_up 0, "no answer ...") before the scheduler's timeout discards it:
// statement_timeout (the server's) <= T - 2g, the client's wait for an answer
// statement_timeout + g, connecting at most T - g, with g = T/5 capped at 1 s.
collectors::PgSessionOptions sessionOptions(const Config& config, const std::string& dsn,
                                            const std::vector<const CollectorSection*>& members) {
  Duration statement_timeout = config.postgres.statement_timeout;
  Duration connect_timeout = config.postgres.connect_timeout;
  Duration grace{1000};
  Duration min_interval = Duration(60'000);
  if (!members.empty()) {
    Duration run_timeout = members.front()->timeout;
    for (const auto* m : members) {
      run_timeout = std::min(run_timeout, m->timeout);
      min_interval = std::min(min_interval, m->interval);
    }
    grace = std::clamp(run_timeout / 5, Duration(1), Duration(1000));
    statement_timeout = std::min(statement_timeout, std::max(Duration(1), run_timeout - 2 * grace));
    connect_timeout = std::min(connect_timeout, std::max(Duration(1), run_timeout - grace));
  }
  collectors::PgSessionOptions o;
  o.dsn = dsn;
  o.password = config.postgres.password;
  o.statement_timeout = statement_timeout;
  o.lock_timeout = std::min(config.postgres.lock_timeout, statement_timeout);
  o.connect_timeout = connect_timeout;
  o.answer_grace = grace;
  // Reconnect attempts at most every few intervals, never slower than 30 s.
  o.max_backoff = std::min(Duration(30'000), 4 * min_interval);
  return o;
}

AdvisorOptions advisorOptions(const Config& config) {
  AdvisorOptions o;
  o.session = sessionOptions(config, config.postgres.dsn, {});
  o.session.statement_timeout = config.postgres.statement_timeout;
  o.hypopg = config.advisor.hypopg == "require" ? HypopgMode::kRequire
             : config.advisor.hypopg == "off"   ? HypopgMode::kOff
                                                : HypopgMode::kAuto;
  const CollectorSection& indexes = config.collectors.at("indexes");
  if (indexes.threshold.count() > 0) o.unused_min_age = indexes.threshold;
  return o;
}

namespace {

// Whether the collector of `entry` runs only on the elected leader.
bool leaderOnly(const Config& config, const collectors::CatalogEntry& entry) {
  return config.agent.leader_election && entry.scope == collectors::CollectorScope::kDatabase;
}

// The enabled collectors of each PostgreSQL session group (pgbouncer has its own server).
std::map<std::string, std::vector<const collectors::CatalogEntry*>> postgresGroups(
    const Config& config) {
  std::map<std::string, std::vector<const collectors::CatalogEntry*>> groups;
  for (const auto& entry : collectors::catalog()) {
    const CollectorSection& section = config.collectors.at(entry.name);
    if (!section.enabled || entry.name == "pgbouncer" || section.group.empty()) continue;
    groups[section.group].push_back(&entry);
  }
  return groups;
}

std::vector<const CollectorSection*> sections(
    const Config& config, const std::vector<const collectors::CatalogEntry*>& entries) {
  std::vector<const CollectorSection*> out;
  for (const auto* e : entries) out.push_back(&config.collectors.at(e->name));
  return out;
}

}  // namespace

std::string localPostgresGroup(const Config& config) {
  for (const auto& [group, entries] : postgresGroups(config)) {
    for (const auto* e : entries) {
      if (!leaderOnly(config, *e)) return group;
    }
  }
  return "";
}

collectors::PgSessionOptions groupSessionOptions(const Config& config, const std::string& group) {
  auto groups = postgresGroups(config);
  auto it = groups.find(group);
  return sessionOptions(
      config, config.postgres.dsn,
      it == groups.end() ? std::vector<const CollectorSection*>{} : sections(config, it->second));
}

std::shared_ptr<Pipeline> buildPipeline(const Config& config, SampleStore& store,
                                        const Clock& clock,
                                        std::shared_ptr<AdvisorGate> advisor_gate,
                                        std::shared_ptr<collectors::PgSession> shared_session) {
  auto p = std::make_shared<Pipeline>();
  p->scheduler = std::make_unique<Scheduler>(store, clock, config.agent.worker_threads);

  // Which enabled, built collectors use which PostgreSQL group.
  const auto groups = postgresGroups(config);
  std::vector<const CollectorSection*> pgbouncer_members;
  if (config.collectors.at("pgbouncer").enabled) {
    pgbouncer_members.push_back(&config.collectors.at("pgbouncer"));
  }
  const std::string local_group = shared_session ? localPostgresGroup(config) : "";
  for (const auto& [group, entries] : groups) {
    if (group == local_group) {
      p->postgres[group] = p->shared_session = shared_session;
      continue;
    }
    auto session = std::make_shared<collectors::PgSession>(
        sessionOptions(config, config.postgres.dsn, sections(config, entries)));
    if (std::all_of(entries.begin(), entries.end(),
                    [&](const auto* e) { return leaderOnly(config, *e); })) {
      p->leader_sessions.push_back(session.get());
    }
    p->postgres[group] = std::move(session);
  }
  if (!config.pgbouncer.dsn.empty() && !pgbouncer_members.empty()) {
    auto o = sessionOptions(config, config.pgbouncer.dsn, pgbouncer_members);
    o.admin_console = true;
    p->pgbouncer = std::make_unique<collectors::PgSession>(o);
  }

  for (const auto& entry : collectors::catalog()) {
    const CollectorSection& section = config.collectors.at(entry.name);
    if (!section.enabled) continue;
    collectors::CollectorEnv env;
    if (auto it = p->postgres.find(section.group); it != p->postgres.end()) {
      env.postgres = it->second.get();
    }
    env.pgbouncer = p->pgbouncer.get();
    env.top_n = section.top_n;
    env.threshold = section.threshold;
    env.interval = section.interval;
    env.timeout = section.timeout;
    env.redis_host = config.redis.addr.host;
    env.redis_port = config.redis.addr.port;
    env.redis_password = config.redis.password;
    env.companion_health_url = config.companion.health_url;
    env.companion_metrics_url = config.companion.metrics_url;
    env.companion_pid_file = config.companion.pid_file;
    env.companion_process_name = config.companion.process_name;
    env.companion_reexport = config.companion.reexport;
    auto collector = entry.make(env);
    if (!collector) {
      spdlog::info("collector {}: not configured, not scheduled", entry.name);
      continue;
    }
    p->collectors.insert(entry.name);
    if (auto* c = dynamic_cast<const collectors::StatementsCollector*>(collector.get())) {
      p->statements = c;
    } else if (auto* l = dynamic_cast<const collectors::LocksCollector*>(collector.get())) {
      p->locks = l;
    } else if (auto* z = dynamic_cast<const collectors::SizeCollector*>(collector.get())) {
      p->size = z;
    }
    JobOptions job{section.interval, section.timeout, 0.1};
    job.leader_only = leaderOnly(config, entry);
    p->scheduler->add(std::move(collector), job);
  }
  // The index advisor hourly on the leader, for dbpulse_index_suggestions (the admin route
  // and the CLI run it on demand too).
  // Only where PostgreSQL is watched at all (some database collector is on).
  if (!config.postgres.dsn.empty() && !groups.empty()) {
    JobOptions job{Duration(3'600'000), Duration(120'000), 0.1};
    job.leader_only = config.agent.leader_election;
    job.background = true;
    p->scheduler->add(
        std::make_unique<AdvisorCollector>(advisorOptions(config), std::move(advisor_gate)), job);
    p->collectors.insert("advisor");
  }
  return p;
}

MaintenanceOptions maintenanceOptions(const Config& config, const CronSchedule& window) {
  MaintenanceOptions o;
  o.session = sessionOptions(config, config.postgres.dsn, {});
  o.enabled = config.maintenance.enabled;
  o.window = window;
  o.window_duration = config.maintenance.window_duration;
  o.dry_run = config.maintenance.dry_run;
  for (const auto& t : config.maintenance.vacuum_full) {
    o.vacuum_full.push_back(t.find('.') == std::string::npos ? "public." + t : t);
  }
  o.table_timeout = config.maintenance.table_timeout;
  o.max_active_sessions = config.maintenance.max_active_sessions;
  o.state_dir = config.agent.state_dir;
  return o;
}

bool retirePipeline(Retirer<Pipeline>& retired, std::shared_ptr<Pipeline> pipeline,
                    Duration grace) {
  std::shared_ptr<Pipeline> keep = pipeline;
  if (retired.retire(std::move(pipeline), grace)) {
    if (keep) {
      for (auto& [group, session] : keep->postgres) {
        if (session != keep->shared_session) session->disconnect();
      }
    }
    return true;  // freed when the last reader lets go
  }
  spdlog::warn(
      "collectors of the previous configuration are still running; they are kept "
      "until they return");
  return false;
}

}  // namespace dbpulse
