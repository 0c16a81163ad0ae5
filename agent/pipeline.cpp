#include "agent/pipeline.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "collectors/catalog.h"

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
  // [collectors.indexes] threshold: the unused-index age of the collector and the advisor.
  const CollectorSection& indexes = config.collectors.at("indexes");
  if (auto it = indexes.options.find("threshold"); it != indexes.options.end()) {
    o.unused_min_age = Duration(it->second);
  }
  return o;
}

namespace {

// Whether the collector of `entry` runs only on the elected leader.
bool leaderOnly(const Config& config, const collectors::CatalogEntry& entry) {
  return config.agent.leader_election && entry.scope == collectors::CollectorScope::kDatabase;
}

// The enabled collectors of each PostgreSQL session group.
std::map<std::string, std::vector<const collectors::CatalogEntry*>> postgresGroups(
    const Config& config) {
  std::map<std::string, std::vector<const collectors::CatalogEntry*>> groups;
  for (const auto& entry : collectors::catalog()) {
    const CollectorSection& section = config.collectors.at(entry.name);
    if (!section.enabled || entry.client != collectors::ClientKind::kPostgres ||
        section.group.empty()) {
      continue;
    }
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

namespace {

using collectors::Client;
using collectors::ClientKind;

// The session of the collector's group, made on the group's first member (its limits from
// every member's section); the elector's shared session for the local group.
Client postgresGroupSession(const Config& config, const CollectorSection& section, Pipeline& p) {
  if (section.group.empty()) return {};
  std::shared_ptr<collectors::PgSession>& session = p.postgres[section.group];
  if (session) return Client(session);
  if (p.shared_session && section.group == localPostgresGroup(config)) {
    session = p.shared_session;
    return Client(session);
  }
  const auto members = postgresGroups(config).at(section.group);
  session = std::make_shared<collectors::PgSession>(
      sessionOptions(config, config.postgres.dsn, sections(config, members)));
  if (std::all_of(members.begin(), members.end(),
                  [&](const auto* e) { return leaderOnly(config, *e); })) {
    p.leader_sessions.push_back(session.get());
  }
  return Client(session);
}

// pgbouncer's admin console, when [pgbouncer] dsn is set: one session for the pipeline.
Client pgbouncerConsole(const Config& config, const CollectorSection&, Pipeline& p) {
  if (config.pgbouncer.dsn.empty()) return {};
  Client& console = p.clients[ClientKind::kPgbouncerConsole];
  if (console.empty()) {
    std::vector<const CollectorSection*> members;
    for (const auto& entry : collectors::catalog()) {
      const CollectorSection& section = config.collectors.at(entry.name);
      if (entry.client == ClientKind::kPgbouncerConsole && section.enabled) {
        members.push_back(&section);
      }
    }
    auto o = sessionOptions(config, config.pgbouncer.dsn, members);
    o.admin_console = true;
    console = Client(std::make_shared<collectors::PgSession>(o));
  }
  return console;
}

Client redisServer(const Config& config, const CollectorSection&, Pipeline&) {
  return Client(std::make_shared<collectors::RedisServer>(collectors::RedisServer{
      config.redis.addr.host, config.redis.addr.port, config.redis.password}));
}

Client companionServer(const Config& config, const CollectorSection&, Pipeline&) {
  const CompanionSection& c = config.companion;
  return Client(std::make_shared<collectors::CompanionServer>(collectors::CompanionServer{
      c.health_url, c.metrics_url, c.reexport, c.pid_file, c.process_name}));
}

// The client registry: how a pipeline gets the client of each kind, one row per kind of
// server. `client` returns what a factory of that kind gets for a collector with `section`
// (empty when that server is not configured); what it makes, the pipeline keeps.
struct ClientRegistration {
  ClientKind kind;
  Client (*client)(const Config& config, const CollectorSection& section, Pipeline& p);
};

const std::vector<ClientRegistration>& clientRegistry() {
  static const std::vector<ClientRegistration> k = {
      {ClientKind::kPostgres, postgresGroupSession},
      {ClientKind::kPgbouncerConsole, pgbouncerConsole},
      {ClientKind::kRedis, redisServer},
      {ClientKind::kCompanion, companionServer},
  };
  return k;
}

Client clientFor(const Config& config, const collectors::CatalogEntry& entry,
                 const CollectorSection& section, Pipeline& p) {
  for (const auto& r : clientRegistry()) {
    if (r.kind == entry.client) return r.client(config, section, p);
  }
  return {};
}

}  // namespace

std::shared_ptr<Pipeline> buildPipeline(const Config& config, SampleStore& store,
                                        const Clock& clock,
                                        std::shared_ptr<AdvisorGate> advisor_gate,
                                        std::shared_ptr<collectors::PgSession> shared_session) {
  auto p = std::make_shared<Pipeline>();
  p->scheduler = std::make_unique<Scheduler>(store, clock, config.agent.worker_threads);
  // The elector's session serves the local group (if there is one).
  if (shared_session && !localPostgresGroup(config).empty())
    p->shared_session = std::move(shared_session);

  for (const auto& entry : collectors::catalog()) {
    const CollectorSection& section = config.collectors.at(entry.name);
    if (!section.enabled) continue;
    collectors::CollectorEnv env;
    env.settings.interval = section.interval;
    env.settings.timeout = section.timeout;
    env.settings.options = section.options;
    env.client = clientFor(config, entry, section, *p);
    auto collector = entry.make(env);
    if (!collector) {
      spdlog::info("collector {}: not configured, not scheduled", entry.name);
      continue;
    }
    p->collectors.insert(entry.name);
    if (const auto* d = collector->detailsProvider()) p->details_providers[entry.name] = d;
    JobOptions job;
    job.interval = section.interval;
    job.timeout = section.timeout;
    job.leader_only = leaderOnly(config, entry);
    job.probe = collectors::upProbe(entry.client);
    p->scheduler->add(std::move(collector), job);
  }
  // The index advisor hourly on the leader, for dbpulse_index_suggestions (the admin route
  // and the CLI run it on demand too).
  // Only where PostgreSQL is watched at all (some database collector is on).
  if (!config.postgres.dsn.empty() && !postgresGroups(config).empty()) {
    JobOptions job;
    job.interval = Duration(3'600'000);
    job.timeout = Duration(120'000);
    job.leader_only = config.agent.leader_election;
    job.background = true;
    job.probe = collectors::upProbe(collectors::ClientKind::kPostgres);
    p->scheduler->add(std::make_unique<AdvisorJob>(advisorOptions(config), std::move(advisor_gate)),
                      job);
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
