#include "agent/agent.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "agent/advisor.h"
#include "agent/agent_options.h"
#include "agent/leader_election.h"
#include "agent/maintenance.h"
#include "agent/scheduler.h"
#include "collectors/catalog.h"
#include "exporters/alertmanager/alertmanager_notifier.h"
#include "rules/rule_manager.h"

#ifndef DBPULSE_VERSION
#define DBPULSE_VERSION "dev"
#endif

namespace dbpulse {

Agent::Agent(Config config)
    : store_(clock_, storeOptions(config)),
      exposition_(store_),
      advisor_gate_(std::make_shared<AdvisorGate>()),
      admin_(*this, clock_, exposition_, advisor_gate_),
      config_(std::move(config)),
      rules_(std::make_unique<rules::RuleManager>(store_, clock_)) {}

Agent::~Agent() { stop(Duration(10'000)); }

Config Agent::config() const {
  MutexLock lock(mu_);
  return config_;
}

std::string Agent::boundHost() const {
  MutexLock lock(mu_);
  return bound_host_;
}

std::shared_ptr<MaintenanceEngine> Agent::maintenance() const {
  MutexLock lock(maintenance_mu_);
  return maintenance_;
}

std::shared_ptr<Pipeline> Agent::pipeline() const {
  MutexLock lock(mu_);
  return pipeline_;
}

Status Agent::start() {
  // A POST /admin/reload arriving once the listener is up waits until start() is done.
  MutexLock reload_lock(reload_mu_);
  const Config cfg = config();
  // The rule files were validated with the config; parsed again here, a file broken in
  // between fails the start like any config error.
  rules::RuleSet rule_set = rules::RuleManager::load(ruleOptions(cfg, 0));
  if (!rule_set.ok()) {
    std::string message = "rule files rejected:";
    for (const auto& e : rule_set.errors) message += "\n  " + e.toString();
    return invalidArgument(message);
  }
  // What admin routes reach exists before the listener opens (a request may come at once).
  configureAlertmanager(cfg);
  configureLeaderElection(cfg);
  configureMaintenance(cfg);
  admin_.install(http_);
  HttpServerOptions http;
  http.listen = cfg.agent.listen_addr;
  http.threads = cfg.agent.http_threads;
  http.max_connections = cfg.agent.max_connections;
  http.max_body_bytes = cfg.agent.max_request_body_bytes;
  http.request_timeout = cfg.agent.request_timeout;
  if (Status s = http_.start(http); !s.ok()) return s;
  {
    MutexLock lock(mu_);
    bound_host_ = cfg.agent.listen_addr.host;
  }
  spdlog::info("listening on {}:{}", cfg.agent.listen_addr.host, http_.port());

  auto p = buildPipeline(cfg, store_, clock_, advisor_gate_, election_session_);
  gateOnLeadership(*p->scheduler);
  std::string names;
  for (const auto& n : p->collectors) names += (names.empty() ? "" : ", ") + n;
  spdlog::info("collectors: {}", names.empty() ? "(none)" : names);
  for (const auto& [group, session] : p->postgres) {
    spdlog::info("postgres session '{}': {}", group, session->redactedDsn());
  }
  p->scheduler->start();
  {
    MutexLock lock(mu_);
    pipeline_ = std::move(p);
  }
  rules_->setAlertSink(alertSink());
  rules_->apply(std::move(rule_set), ruleOptions(cfg, http_.port()));
  // Alerts restored as firing must not resolve at an evaluation that runs before the
  // collectors have reported once; a collector stuck past a minute does not hold rules back.
  // (A first run that fails is a report too: waiting for a success would hold every rule
  // back for a minute whenever a server is down at start.)
  rules_->setStartGate(
      [this] {
        auto pl = pipeline();
        if (!pl) return true;
        for (const auto& s : pl->scheduler->status()) {
          if (s.holdsReadiness()) {
            return false;
          }
        }
        return true;
      },
      std::chrono::milliseconds(60'000));
  rules_->start();
  return okStatus();
}

std::vector<ConfigError> Agent::reloadFromFile() {
  const std::string path = config().path;
  auto result = loadConfigFile(path, processEnvironment());
  if (!result.config) {
    for (const auto& e : result.errors) spdlog::error("reload rejected: {}", e.toString());
    spdlog::error("reload rejected: keeping the running configuration");
    std::vector<rules::LoadError> rule_errors;
    for (const auto& e : result.errors) {
      if (e.file != path) rule_errors.push_back({e.file, e.line, e.column, e.message});
    }
    if (!rule_errors.empty()) rules_->recordReloadFailure(rule_errors);
    return result.errors;
  }
  if (!reload(std::move(*result.config))) {
    return {ConfigError{path, 0, 0, "the agent is stopping; reload refused"}};
  }
  return {};
}

bool Agent::reload(Config config) {
  MutexLock reload_lock(reload_mu_);
  if (stopped_) {
    spdlog::warn("reload: the agent is stopping; reload refused");
    return false;
  }
  if (config.agent.listen != Agent::config().agent.listen) {
    spdlog::warn("reload: agent.listen changed to {}; it takes effect after a restart",
                 config.agent.listen);
  }
  auto old = pipeline();
  std::set<std::string> old_collectors;
  if (old) old_collectors = old->collectors;
  // A collector stuck past the grace keeps the old pipeline alive (retire), never freed
  // under it.
  retirePipeline(retired_, std::move(old), Duration(10'000));
  configureLeaderElection(config);
  configureMaintenance(config);
  auto fresh = buildPipeline(config, store_, clock_, advisor_gate_, election_session_);
  gateOnLeadership(*fresh->scheduler);
  for (const auto& name : old_collectors) {
    if (!fresh->collectors.count(name)) {
      store_.dropSource(name);
      store_.dropSource("scheduler:" + name);
      store_.dropSource("enabled:" + name);
    }
  }
  fresh->scheduler->start();
  configureAlertmanager(config);
  if (config.agent.history != Agent::config().agent.history) {
    spdlog::warn("reload: agent.history changed to {}; it takes effect after a restart",
                 formatDuration(config.agent.history));
  }
  // Parsed completely before they replace the running rules; a bad file keeps the old ones.
  const auto rule_options = ruleOptions(config, http_.port());
  rules::RuleSet rule_set = rules::RuleManager::load(rule_options);
  if (rule_set.ok()) {
    rules_->setAlertSink(alertSink());
    rules_->apply(std::move(rule_set), rule_options);
  } else {
    for (const auto& e : rule_set.errors) spdlog::error("reload: rules kept: {}", e.toString());
    rules_->recordReloadFailure(rule_set.errors);
  }
  {
    MutexLock lock(mu_);
    config_ = std::move(config);
    pipeline_ = fresh;
  }
  spdlog::info("reload: configuration applied ({} collectors)", fresh->collectors.size());
  return true;
}

AlertSink* Agent::alertSink() const { return notifier(); }

exporters::AlertmanagerNotifier* Agent::notifier() const {
  MutexLock lock(mu_);
  return notifier_.get();
}

void Agent::configureAlertmanager(const Config& config) {
  if (exporters::AlertmanagerNotifier* n = notifier()) {
    n->setUrls(config.alertmanager.urls);
    return;
  }
  if (config.alertmanager.urls.empty()) return;
  exporters::AlertmanagerNotifierOptions o;
  o.urls = config.alertmanager.urls;
  o.state_dir = config.agent.state_dir;
  o.metrics_store = &store_;
  exporters::CurlTransportOptions http;
  http.user_agent = "dbpulse/" DBPULSE_VERSION;
  o.transport_factory = exporters::curlTransportFactory(http);
  auto n = std::make_unique<exporters::AlertmanagerNotifier>(std::move(o), clock_);
  std::string urls;
  for (const auto& u : config.alertmanager.urls) urls += (urls.empty() ? "" : ", ") + u;
  spdlog::info("alertmanager: notifying {}", urls);
  MutexLock lock(mu_);
  notifier_ = std::move(n);
}

void Agent::configureLeaderElection(const Config& config) {
  // Only worth a connection when something database-wide is collected.
  Duration period{5000};
  bool database_work = false;
  for (const auto& entry : collectors::catalog()) {
    const CollectorSection& section = config.collectors.at(entry.name);
    if (entry.scope != collectors::CollectorScope::kDatabase || !section.enabled) continue;
    database_work = true;
    period = std::min(period, section.interval);
  }
  period = std::max(period, Duration(100));
  const bool on = config.agent.leader_election && database_work && !config.postgres.dsn.empty();
  // The lock is held on the session of the collectors every agent runs (`connections`), so
  // a follower holds one connection; it takes that group's limits, bounded by the period.
  const std::string group = localPostgresGroup(config);
  collectors::PgSessionOptions session = groupSessionOptions(config, group);
  session.statement_timeout = std::min(session.statement_timeout, std::max(period, Duration(1000)));
  session.lock_timeout = std::min(session.lock_timeout, session.statement_timeout);
  session.connect_timeout = std::min(session.connect_timeout, std::max(period, Duration(1000)));
  session.max_backoff = std::min(session.max_backoff, period);  // a leader again within a period
  // "off" differs from the initial empty key, so the first call without an election still
  // writes dbpulse_leader 1 below (it returned early, and the series was never exported).
  const std::string key = on ? config.postgres.dsn + '\n' + config.postgres.password + '\n' +
                                   std::to_string(period.count()) + '\n' + group + '\n' +
                                   std::to_string(session.statement_timeout.count()) + '\n' +
                                   std::to_string(session.lock_timeout.count()) + '\n' +
                                   std::to_string(session.connect_timeout.count()) + '\n' +
                                   std::to_string(session.answer_grace.count()) + '\n' +
                                   std::to_string(session.max_backoff.count())
                             : "off";
  if (key == leader_key_ && (leader_ != nullptr) == on) return;
  if (leader_) {
    leader_->stop();
    leader_.reset();
  }
  election_session_.reset();
  leader_key_ = key;
  election_on_ = on;
  if (!on) {
    is_leader_ = true;
    // Without an election this agent does all the work: it is its own leader.
    SampleBatch b;
    b.gauge("dbpulse_leader",
            "1 while this agent is the elected leader that runs the database-wide collectors", {},
            1);
    store_.dropSource("leader");
    store_.write("leader", b, std::chrono::hours(24 * 365));
    return;
  }
  election_session_ = std::make_shared<collectors::PgSession>(session);
  LeaderElectorOptions o;
  o.shared_session = election_session_;
  o.period = period;
  leader_ = std::make_unique<LeaderElector>(o, store_, [this](bool leader, bool changed) {
    auto p = pipeline();
    if (changed) {
      is_leader_ = leader;
      if (p) p->scheduler->leadershipChanged();
    }
    // A follower keeps no session of the leader's collectors (one left connected by a run
    // that ended after leadership was lost is closed at the next round).
    if (!leader && p) {
      for (auto* s : p->leader_sessions) {
        if (s->serverVersion() != 0) s->disconnect();
      }
    }
  });
  leader_->start();
  is_leader_ = leader_->isLeader();
  spdlog::info("leader election: {} every {} (advisory lock {} in the DSN's database)",
               is_leader_ ? "leader" : "follower", formatDuration(period), kLeaderLockKey);
}

void Agent::configureMaintenance(const Config& config) {
  auto window = CronSchedule::parse(config.maintenance.window);
  const bool on = !config.postgres.dsn.empty() && window.ok();
  const std::string key = on ? config.postgres.dsn + '\n' + config.postgres.password + '\n' +
                                   config.maintenance.window + '\n' +
                                   std::to_string(config.maintenance.window_duration.count()) +
                                   '\n' + (config.maintenance.enabled ? "on" : "off") +
                                   (config.maintenance.dry_run ? "dry" : "") + '\n' +
                                   std::to_string(config.maintenance.table_timeout.count()) + '\n' +
                                   std::to_string(config.maintenance.max_active_sessions) + '\n' +
                                   [&] {
                                     std::string s;
                                     for (const auto& t : config.maintenance.vacuum_full)
                                       s += t + ",";
                                     return s;
                                   }() +
                                   config.agent.state_dir
                             : "";
  if (key == maintenance_key_) return;
  std::shared_ptr<MaintenanceEngine> old;
  {
    MutexLock lock(maintenance_mu_);
    old = std::move(maintenance_);
  }
  if (old) old->stop();
  maintenance_key_ = key;
  if (!on) return;
  auto engine = std::make_shared<MaintenanceEngine>(maintenanceOptions(config, *window), store_,
                                                    clock_, [this] { return is_leader_.load(); });
  engine->start();
  MutexLock lock(maintenance_mu_);
  maintenance_ = std::move(engine);
}

void Agent::gateOnLeadership(Scheduler& scheduler) {
  if (leader_) scheduler.setLeaderGate([this] { return is_leader_.load(); });
}

bool Agent::stop(Duration grace) {
  // After a reload in flight (it may install a pipeline or a leader elector), and before
  // any later one.
  MutexLock reload_lock(reload_mu_);
  stopped_ = true;
  // Rules first: their last notifications reach the notifier before it writes its outbox.
  if (rules_) rules_->stop();
  std::shared_ptr<Pipeline> p;
  {
    MutexLock lock(mu_);
    p = std::move(pipeline_);
  }
  const bool clean = retirePipeline(retired_, std::move(p), grace);
  std::shared_ptr<MaintenanceEngine> maintenance;
  {
    MutexLock lock(maintenance_mu_);
    maintenance = std::move(maintenance_);
  }
  if (maintenance) maintenance->stop();  // cancels a running VACUUM
  if (leader_) leader_->stop();          // hands leadership over at once
  if (exporters::AlertmanagerNotifier* n = notifier()) n->shutdown();  // writes the outbox
  http_.stop();
  // A collector thread still inside a retired pipeline keeps it for the process' life:
  // destroying the Agent must not wait for it.
  retired_.abandon();
  return clean;
}

}  // namespace dbpulse
