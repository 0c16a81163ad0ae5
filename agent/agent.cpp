#include "agent/agent.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <thread>

#include "agent/advisor.h"
#include "agent/database_views.h"
#include "agent/leader_election.h"
#include "agent/maintenance.h"
#include "agent/scheduler.h"
#include "collectors/catalog.h"
#include "collectors/postgres/locks_collector.h"
#include "collectors/postgres/pg_session.h"
#include "collectors/postgres/size_collector.h"
#include "collectors/postgres/statements_collector.h"
#include "exporters/alertmanager/alertmanager_notifier.h"
#include "rules/rule_manager.h"

#ifndef DBPULSE_VERSION
#define DBPULSE_VERSION "dev"
#endif

namespace dbpulse {

struct Agent::Pipeline {
  std::map<std::string, std::unique_ptr<collectors::PgSession>> postgres;  // by group
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

namespace {

// A store that keeps [agent] history of points per series, so rule ranges up to that length
// work: history / (shortest collector or rule interval) points at most, capped (points
// cost 16 bytes each); a series written less often holds only its window's points.
constexpr int64_t kMaxHistoryPoints = 1000;

int64_t shortestIntervalMs(const Config& config) {
  Duration shortest = config.rules.evaluation_interval;
  for (const auto& [name, c] : config.collectors) {
    if (c.enabled) shortest = std::min(shortest, c.interval);
  }
  return std::max<int64_t>(shortest.count(), 1);
}

SampleStoreOptions storeOptions(const Config& config) {
  const int64_t points = config.agent.history.count() / shortestIntervalMs(config) + 1;
  SampleStoreOptions o;
  o.history_points = static_cast<size_t>(std::clamp<int64_t>(points, 2, kMaxHistoryPoints));
  // Each series keeps only that window: slower series hold fewer points.
  o.history_ms = config.agent.history.count();
  return o;
}

std::string configDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// What the rule manager needs from the config. `port` is the bound HTTP port (0 before the
// listener is up), for the generatorURL of notifications.
rules::RuleManagerOptions ruleOptions(const Config& config, int port) {
  rules::RuleManagerOptions o;
  o.files = config.rules.files;
  o.base_dir = configDir(config.path);
  o.state_dir = config.agent.state_dir;
  const int64_t points = static_cast<int64_t>(storeOptions(config).history_points);
  o.history_ms =
      std::min<int64_t>(config.agent.history.count(), (points - 1) * shortestIntervalMs(config));
  o.engine.default_interval_ms = config.rules.evaluation_interval.count();
  o.engine.resend_interval_ms = config.alertmanager.resend_interval.count();
  o.engine.instance = config.agent.instance;
  // Prometheus looks back 5 minutes because it scrapes every series every interval; our
  // collectors write a series once per run (size every 10 minutes), and the store already
  // drops a series 2 x interval + timeout after its last write. So an instant selector sees
  // the latest value for as long as the store keeps the series.
  int64_t lookback = 5 * 60'000;
  for (const auto& [name, c] : config.collectors) {
    if (c.enabled) lookback = std::max<int64_t>(lookback, (2 * c.interval + c.timeout).count());
  }
  o.engine.eval.lookback_ms = lookback;
  std::string host = config.agent.listen_addr.host;
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    char name[256] = {};
    host = gethostname(name, sizeof name - 1) == 0 && name[0] != '\0' ? name : "localhost";
  } else if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  }
  o.engine.generator_url = "http://" + host + ":" + std::to_string(port);
  return o;
}

}  // namespace

Agent::Agent(Config config)
    : store_(clock_, storeOptions(config)), exposition_(store_), config_(std::move(config)) {
  rules_ = std::make_unique<rules::RuleManager>(store_, clock_);
}

Agent::~Agent() { stop(Duration(10'000)); }

namespace {

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

// The advisor's errors as HTTP answers: the database's state is a 503, never a 500.
HttpResponse advisorError(const Status& s) {
  switch (s.code()) {
    case StatusCode::kFailedPrecondition: {
      const auto colon = s.message().find(':');
      return HttpResponse::error(
          503, colon == std::string::npos ? "precondition" : s.message().substr(0, colon),
          s.message());
    }
    case StatusCode::kDeadlineExceeded:
      return HttpResponse::error(503, "timeout", s.message());
    default:
      return HttpResponse::error(503, "database_unavailable", s.message());
  }
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

// Admin work that recurses (rule files, query plans) or sits in libpq runs on a thread of
// its own with a full-size stack, whatever stack the HTTP server's threads have (CivetWeb's
// were small; a deep plan or expression must not overflow them).
HttpResponse onFullStack(const std::function<HttpResponse()>& work) {
  HttpResponse out;
  std::thread worker([&] { out = work(); });
  worker.join();
  return out;
}

// 429 with Retry-After, for work that runs one at a time.
HttpResponse tooBusy(const std::string& message, const std::string& retry_after_seconds) {
  auto r = HttpResponse::error(429, "busy", message);
  r.headers.emplace_back("Retry-After", retry_after_seconds);
  return r;
}

void writeSuggestionCounts(SampleStore& store, const IndexSuggestions& s) {
  SampleBatch b;
  exportSuggestionCounts(s, b);
  // The same source as the hourly `advisor` job: the newest run's counts replace the last.
  store.write("advisor", b, std::chrono::hours(3));
}

}  // namespace

std::shared_ptr<Agent::Pipeline> Agent::buildPipeline(const Config& config, SampleStore& store,
                                                      const Clock& clock) {
  auto p = std::make_shared<Pipeline>();
  p->scheduler = std::make_unique<Scheduler>(store, clock, config.agent.worker_threads);

  // Which enabled, built collectors use which PostgreSQL group.
  std::map<std::string, std::vector<const CollectorSection*>> groups;
  std::vector<const CollectorSection*> pgbouncer_members;
  for (const auto& entry : collectors::catalog()) {
    const CollectorSection& section = config.collectors.at(entry.name);
    if (!section.enabled || !entry.make) continue;
    if (entry.name == "pgbouncer") {
      pgbouncer_members.push_back(&section);
    } else if (!section.group.empty()) {
      groups[section.group].push_back(&section);
    }
  }
  for (const auto& [group, members] : groups) {
    p->postgres[group] = std::make_unique<collectors::PgSession>(
        sessionOptions(config, config.postgres.dsn, members));
  }
  if (!config.pgbouncer.dsn.empty() && !pgbouncer_members.empty()) {
    auto o = sessionOptions(config, config.pgbouncer.dsn, pgbouncer_members);
    o.admin_console = true;
    p->pgbouncer = std::make_unique<collectors::PgSession>(o);
  }

  for (const auto& entry : collectors::catalog()) {
    const CollectorSection& section = config.collectors.at(entry.name);
    if (!section.enabled) continue;
    if (!entry.make) {
      spdlog::debug("collector {}: not available in this version", entry.name);
      continue;
    }
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
    job.leader_only =
        config.agent.leader_election && entry.scope == collectors::CollectorScope::kDatabase;
    p->scheduler->add(std::move(collector), job);
  }
  // The index advisor hourly on the leader, for dbpulse_index_suggestions (the admin route
  // and the CLI run it on demand too).
  // Only where PostgreSQL is watched at all (some database collector is on).
  if (!config.postgres.dsn.empty() && !groups.empty()) {
    JobOptions job{Duration(3'600'000), Duration(120'000), 0.1};
    job.leader_only = config.agent.leader_election;
    job.background = true;
    p->scheduler->add(std::make_unique<AdvisorCollector>(advisorOptions(config)), job);
    p->collectors.insert("advisor");
  }
  return p;
}

Config Agent::currentConfig() const {
  std::lock_guard lock(mu_);
  return config_;
}

std::shared_ptr<Agent::Pipeline> Agent::pipeline() const {
  std::lock_guard lock(mu_);
  return pipeline_;
}

Status Agent::start() {
  // A POST /admin/reload arriving once the listener is up waits until start() is done.
  std::lock_guard reload_lock(reload_mu_);
  Config cfg;
  {
    std::lock_guard lock(mu_);
    cfg = config_;
  }
  // The rule files were validated with the config; parsed again here, a file broken in
  // between fails the start like any config error.
  rules::RuleSet rule_set = rules::RuleManager::load(ruleOptions(cfg, 0));
  if (!rule_set.ok()) {
    std::string message = "rule files rejected:";
    for (const auto& e : rule_set.errors) message += "\n  " + e.toString();
    return invalidArgument(message);
  }
  // Everything an admin route reaches exists before the listener opens: a request that
  // arrives at once (as soon as /health answers) must not find maintenance unconfigured.
  configureAlertmanager(cfg);
  configureLeaderElection(cfg);
  configureMaintenance(cfg);
  installRoutes();
  HttpServerOptions http;
  http.listen = cfg.agent.listen_addr;
  http.threads = cfg.agent.http_threads;
  http.max_connections = cfg.agent.max_connections;
  http.max_body_bytes = cfg.agent.max_request_body_bytes;
  http.request_timeout = cfg.agent.request_timeout;
  if (Status s = http_.start(http); !s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    bound_host_ = cfg.agent.listen_addr.host;
  }
  spdlog::info("listening on {}:{}", cfg.agent.listen_addr.host, http_.port());

  auto p = buildPipeline(cfg, store_, clock_);
  gateOnLeadership(*p->scheduler);
  std::string names;
  for (const auto& n : p->collectors) names += (names.empty() ? "" : ", ") + n;
  spdlog::info("collectors: {}", names.empty() ? "(none)" : names);
  for (const auto& [group, session] : p->postgres) {
    spdlog::info("postgres session '{}': {}", group, session->redactedDsn());
  }
  p->scheduler->start();
  {
    std::lock_guard lock(mu_);
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
  std::string path;
  {
    std::lock_guard lock(mu_);
    path = config_.path;
  }
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
  std::lock_guard reload_lock(reload_mu_);
  if (stopped_) {
    spdlog::warn("reload: the agent is stopping; reload refused");
    return false;
  }
  if (config.agent.listen != currentConfig().agent.listen) {
    spdlog::warn("reload: agent.listen changed to {}; it takes effect after a restart",
                 config.agent.listen);
  }
  auto old = pipeline();
  std::set<std::string> old_collectors;
  if (old) old_collectors = old->collectors;
  // A collector stuck past the grace keeps the old pipeline alive (retire), never freed
  // under it.
  retire(std::move(old), Duration(10'000));
  configureLeaderElection(config);
  configureMaintenance(config);
  auto fresh = buildPipeline(config, store_, clock_);
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
  if (config.agent.history != currentConfig().agent.history) {
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
    std::lock_guard lock(mu_);
    config_ = std::move(config);
    pipeline_ = fresh;
  }
  spdlog::info("reload: configuration applied ({} collectors)", fresh->collectors.size());
  return true;
}

bool Agent::retire(std::shared_ptr<Pipeline> p, Duration grace) {
  std::shared_ptr<Pipeline> keep = p;
  if (retired_.retire(std::move(p), grace)) {
    if (keep) {
      for (auto& [group, session] : keep->postgres) session->disconnect();
    }
    return true;  // freed when the last reader lets go
  }
  spdlog::warn("collectors of the previous configuration are still running; they are kept "
               "until they return");
  return false;
}

AlertSink* Agent::alertSink() const { return notifier(); }

exporters::AlertmanagerNotifier* Agent::notifier() const {
  std::lock_guard lock(mu_);
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
  std::lock_guard lock(mu_);
  notifier_ = std::move(n);
}

void Agent::configureLeaderElection(const Config& config) {
  // Only worth a connection when something database-wide is collected.
  Duration period{5000};
  bool database_work = false;
  for (const auto& entry : collectors::catalog()) {
    const CollectorSection& section = config.collectors.at(entry.name);
    if (entry.scope != collectors::CollectorScope::kDatabase || !section.enabled || !entry.make) {
      continue;
    }
    database_work = true;
    period = std::min(period, section.interval);
  }
  period = std::max(period, Duration(100));
  const bool on = config.agent.leader_election && database_work && !config.postgres.dsn.empty();
  // "off" differs from the initial empty key, so the first call without an election still
  // writes dbpulse_leader 1 below (it returned early, and the series was never exported).
  const std::string key = on ? config.postgres.dsn + '\n' + config.postgres.password + '\n' +
                                   std::to_string(period.count())
                             : "off";
  if (key == leader_key_ && (leader_ != nullptr) == on) return;
  if (leader_) {
    leader_->stop();
    leader_.reset();
  }
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
  LeaderElectorOptions o;
  o.session = sessionOptions(config, config.postgres.dsn, {});
  o.session.statement_timeout =
      std::min(o.session.statement_timeout, std::max(period, Duration(1000)));
  o.session.connect_timeout = std::min(o.session.connect_timeout, std::max(period, Duration(1000)));
  o.session.max_backoff = period;  // a restarted server gets a leader again within a period
  o.period = period;
  leader_ = std::make_unique<LeaderElector>(o, store_, [this](bool leader) {
    is_leader_ = leader;
    if (auto p = pipeline()) p->scheduler->leadershipChanged();
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
    std::lock_guard lock(maintenance_mu_);
    old = std::move(maintenance_);
  }
  if (old) old->stop();
  maintenance_key_ = key;
  if (!on) return;
  auto engine = std::make_shared<MaintenanceEngine>(maintenanceOptions(config, *window), store_,
                                                    clock_, [this] { return is_leader_.load(); });
  engine->start();
  std::lock_guard lock(maintenance_mu_);
  maintenance_ = std::move(engine);
}

void Agent::gateOnLeadership(Scheduler& scheduler) {
  if (leader_) scheduler.setLeaderGate([this] { return is_leader_.load(); });
}

bool Agent::stop(Duration grace) {
  // After a reload in flight (it may install a pipeline or a leader elector), and before
  // any later one.
  std::lock_guard reload_lock(reload_mu_);
  stopped_ = true;
  // Rules first: their last notifications reach the notifier before it writes its outbox.
  if (rules_) rules_->stop();
  std::shared_ptr<Pipeline> p;
  {
    std::lock_guard lock(mu_);
    p = std::move(pipeline_);
  }
  const bool clean = retire(std::move(p), grace);
  std::shared_ptr<MaintenanceEngine> maintenance;
  {
    std::lock_guard lock(maintenance_mu_);
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

namespace {

bool isLoopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "::1" || host == "localhost";
}

// Compares without an early exit, so response time does not reveal a token prefix.
bool constantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

}  // namespace

Agent::AdminCheck Agent::checkAdmin(const HttpRequest& request) const {
  std::string token, host;
  {
    std::lock_guard lock(mu_);
    token = config_.agent.admin_token;
    host = bound_host_;  // not the config's: a reload does not move the socket
  }
  const bool presented = !request.authorization.empty();
  if (token.empty()) {
    const AdminToken seen = presented ? AdminToken::kUnchecked : AdminToken::kAbsent;
    if (isLoopback(host)) return {HttpResponse{0, "", "", {}}, seen};
    return {HttpResponse::error(
                403, "forbidden",
                "admin routes need agent.admin_token_file when listening on " + host),
            seen};
  }
  const std::string prefix = "Bearer ";
  if (request.authorization.rfind(prefix, 0) != 0 ||
      !constantTimeEquals(request.authorization.substr(prefix.size()), token)) {
    auto r = HttpResponse::error(401, "unauthorized", "missing or wrong bearer token");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return {std::move(r), presented ? AdminToken::kInvalid : AdminToken::kAbsent};
  }
  return {HttpResponse{0, "", "", {}}, AdminToken::kValid};
}

void Agent::adminRoute(const std::string& method, const std::string& path, HttpHandler handler) {
  auto guarded = [this, method, path, handler = std::move(handler)](const HttpRequest& request) {
    const auto started = std::chrono::steady_clock::now();
    AdminCheck check = checkAdmin(request);
    AdminCall call{request.remote_addr, check.token, method, path, 0, {}};
    RateLimit limit;
    {
      std::lock_guard lock(mu_);
      limit = RateLimit{static_cast<double>(config_.agent.admin_rate_limit),
                        static_cast<double>(config_.agent.admin_rate_burst)};
    }
    // Before the token check: guessing tokens is rate-limited too.
    const RateLimiter::Decision decision = admin_limiter_.take(request.remote_addr, limit);
    HttpResponse response;
    if (!decision.allowed) {
      response = HttpResponse::error(429, "rate_limited",
                                     "too many admin calls from " + request.remote_addr);
      response.headers.emplace_back("Retry-After", std::to_string(decision.retry_after_seconds));
    } else if (check.denial.status != 0) {
      response = std::move(check.denial);
    } else {
      try {
        response = handler(request);
      } catch (...) {  // the server answers 500; the call is still audited
        call.status = 500;
        call.duration = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - started);
        logAdminCall(call);
        throw;
      }
    }
    call.status = response.status;
    call.duration = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    logAdminCall(call);
    return response;
  };
  http_.route(method, path, std::move(guarded), RouteKind::kSlow);
}

void Agent::installRoutes() {
  adminRoute("GET", "/admin/rules",
             [this](const HttpRequest&) { return HttpResponse::json(200, rules_->rulesJson()); });
  adminRoute("GET", "/admin/alerts",
             [this](const HttpRequest&) { return HttpResponse::json(200, rules_->alertsJson()); });
  adminRoute("GET", "/admin/database/metrics", [this](const HttpRequest&) {
    auto p = pipeline();
    return HttpResponse::json(200,
                              databaseMetricsJson(*store_.snapshot(), p ? p->statements : nullptr,
                                                  p ? p->locks : nullptr));
  });
  adminRoute("GET", "/admin/database/size", [this](const HttpRequest&) {
    auto p = pipeline();
    return HttpResponse::json(200, databaseSizeJson(p ? p->size : nullptr));
  });
  adminRoute("GET", "/admin/database/index-suggestions", [this](const HttpRequest&) {
    return onFullStack([this] { return indexSuggestions(); });
  });
  adminRoute("POST", "/admin/database/analyze-query", [this](const HttpRequest& r) {
    return onFullStack([this, &r] { return analyzeQuery(r); });
  });
  adminRoute("GET", "/admin/maintenance", [this](const HttpRequest&) {
    std::shared_ptr<MaintenanceEngine> m;
    {
      std::lock_guard lock(maintenance_mu_);
      m = maintenance_;
    }
    if (!m) {
      return HttpResponse::json(
          200, "{\"enabled\": false, \"reason\": \"no [postgres] dsn\", \"history\": []}\n");
    }
    return HttpResponse::json(200, m->statusJson());
  });
  adminRoute("POST", "/admin/database/optimize", [this](const HttpRequest& r) {
    return onFullStack([this, &r] { return optimize(r); });
  });
  adminRoute("POST", "/admin/reload", [this](const HttpRequest&) {
    return onFullStack([this] {
      auto errors = reloadFromFile();
      if (errors.empty()) return HttpResponse::json(200, "{\"status\":\"reloaded\"}\n");
      nlohmann::json j{{"error", "config rejected; the running configuration stays"},
                       {"code", "invalid_config"}};
      for (const auto& e : errors) j["details"].push_back(e.toString());
      return HttpResponse::json(400, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    });
  });
  http_.route("GET", "/metrics", [this](const HttpRequest& r) { return metrics(r); });
  http_.route("GET", "/health",
              [](const HttpRequest&) { return HttpResponse::json(200, "{\"status\":\"ok\"}\n"); });
  http_.route("GET", "/health/ready", [this](const HttpRequest&) { return ready(); });
  http_.route("GET", "/", [this](const HttpRequest& r) { return statusPage(r); });
}

HttpResponse Agent::optimize(const HttpRequest& request) {
  nlohmann::json body = request.body.empty() ? nlohmann::json::object()
                                             : nlohmann::json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return HttpResponse::error(
        400, "invalid_json",
        "the body must be a JSON object: {\"tables\": [\"public.messages\"], "
        "\"dry_run\": false}");
  }
  std::vector<std::string> tables;
  for (const auto& [key, value] : body.items()) {
    if (key == "tables") {
      if (!value.is_array()) {
        return HttpResponse::error(400, "invalid_request", "\"tables\" must be an array of names");
      }
      for (const auto& t : value) {
        if (!t.is_string() || t.get<std::string>().empty() || t.get<std::string>().size() > 200) {
          return HttpResponse::error(400, "invalid_request",
                                     "\"tables\" must hold table names (\"schema.table\")");
        }
        tables.push_back(t.get<std::string>());
      }
    } else if (key == "dry_run") {
      if (!value.is_boolean()) {
        return HttpResponse::error(400, "invalid_request", "\"dry_run\" must be true or false");
      }
    } else {
      return HttpResponse::error(400, "invalid_request",
                                 "unknown field \"" + key + "\" (tables, dry_run)");
    }
  }
  std::shared_ptr<MaintenanceEngine> m;
  {
    std::lock_guard lock(maintenance_mu_);
    m = maintenance_;
  }
  if (!m) return HttpResponse::error(503, "not_configured", "maintenance needs [postgres] dsn");
  if (!is_leader_) {
    return HttpResponse::error(503, "not_leader",
                               "another agent is the elected leader for this database; send the "
                               "request to it (dbpulse_leader == 1)");
  }
  auto id = m->requestRun(tables, body.value("dry_run", false));
  if (!id.ok()) {
    const Status& s = id.status();
    if (s.code() == StatusCode::kInvalidArgument) {
      return HttpResponse::error(400, "unknown_tables", s.message());
    }
    if (s.code() == StatusCode::kUnavailable && s.message().rfind("busy", 0) == 0) {
      return tooBusy(s.message(), "30");
    }
    return advisorError(s);
  }
  nlohmann::json out{{"run_id", *id}, {"status", "/admin/maintenance"}};
  return HttpResponse::json(202, out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

HttpResponse Agent::indexSuggestions() {
  std::unique_lock busy(advisor_mu_, std::try_to_lock);
  if (!busy.owns_lock()) return tooBusy("an advisor run is in progress; retry shortly", "5");
  const Config cfg = currentConfig();
  auto result = dbpulse::suggestIndexes(advisorOptions(cfg), {});
  if (!result.ok()) return advisorError(result.status());
  writeSuggestionCounts(store_, *result);
  return HttpResponse::json(200, suggestionsJson(*result));
}

HttpResponse Agent::analyzeQuery(const HttpRequest& request) {
  const auto body = nlohmann::json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return HttpResponse::error(400, "invalid_json",
                               "the body must be a JSON object: {\"query\": \"SELECT ...\", "
                               "\"analyze\": false}");
  }
  if (!body.contains("query") || !body["query"].is_string() ||
      body["query"].get<std::string>().empty()) {
    return HttpResponse::error(400, "invalid_request", "\"query\" must be a non-empty string");
  }
  if (body.contains("analyze") && !body["analyze"].is_boolean()) {
    return HttpResponse::error(400, "invalid_request", "\"analyze\" must be true or false");
  }
  for (const auto& [key, value] : body.items()) {
    if (key != "query" && key != "analyze") {
      return HttpResponse::error(400, "invalid_request",
                                 "unknown field \"" + key + "\" (query, analyze)");
    }
  }
  const Config cfg = currentConfig();
  const bool analyze = body.value("analyze", false);
  if (analyze && !cfg.advisor.allow_analyze) {
    return HttpResponse::error(403, "analyze_disabled",
                               "executing statements is switched off ([advisor] allow_analyze = "
                               "false); ask for the plan alone (\"analyze\": false)");
  }
  std::unique_lock busy(advisor_mu_, std::try_to_lock);
  if (!busy.owns_lock()) return tooBusy("an advisor run is in progress; retry shortly", "5");
  auto result =
      dbpulse::analyzeQuery(advisorOptions(cfg), body["query"].get<std::string>(), analyze);
  if (!result.ok()) {
    const Status& s = result.status();
    // What the query itself causes is the caller's problem (4xx); the server's state is a 503.
    if (s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kPermissionDenied) {
      return HttpResponse::error(400, "query_rejected", s.message());
    }
    if (s.code() == StatusCode::kDeadlineExceeded) {
      return HttpResponse::error(400, "query_timeout",
                                 s.message() + " (statement_timeout " +
                                     formatDuration(cfg.postgres.statement_timeout) + ")");
    }
    return advisorError(s);
  }
  nlohmann::json out{{"analyzed", analyze}, {"findings", result->findings}};
  out["plan"] = nlohmann::json::parse(result->plan_json, nullptr, false);
  return HttpResponse::json(
      200, out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

int Agent::suggestIndexes(const Config& config, bool json, std::ostream& out, std::ostream& err) {
  auto result = dbpulse::suggestIndexes(advisorOptions(config), [&err](const std::string& line) {
    err << "advisor: " << line << "\n";
  });
  if (!result.ok()) {
    err << "dbpulse suggest-indexes: " << result.status().toString() << "\n";
    return 1;
  }
  out << (json ? suggestionsJson(*result) : suggestionsTable(*result));
  return 0;
}

HttpResponse Agent::metrics(const HttpRequest& request) {
  HttpResponse r{200, "text/plain; version=0.0.4; charset=utf-8", {}, {{"Vary", "Accept-Encoding"}}};
  if (acceptsEncoding(request.accept_encoding, "gzip")) {
    r.body = *exposition_.renderGzip();
    r.headers.emplace_back("Content-Encoding", "gzip");
  } else {
    r.body = *exposition_.render();
  }
  return r;
}

HttpResponse Agent::ready() const {
  auto p = pipeline();
  nlohmann::json body;
  nlohmann::json collectors = nlohmann::json::object();
  std::vector<std::string> reasons;
  if (!p) {
    reasons.push_back("collectors are not running");
  } else {
    for (const auto& s : p->scheduler->status()) {
      nlohmann::json c{{"ok", s.last_success}, {"runs", s.runs}};
      if (s.standby) c["standby"] = true;
      if (s.holdsReadiness()) {
        c["ok"] = nullptr;
        reasons.push_back("collector " + s.name + " has not finished its first run");
      }
      if (!s.last_error.empty()) c["error"] = s.last_error;
      if (!s.disabled_reason.empty()) c["disabled"] = s.disabled_reason;
      if (s.backoff.count() > 0) c["backoff_seconds"] = s.backoff.count() / 1000.0;
      collectors[s.name] = c;
    }
  }
  // Readiness means "the agent works", not "every server it watches is up": a failing
  // collector shows in the details while the agent still reports ready.
  body["status"] = reasons.empty() ? "ready" : "not_ready";
  body["collectors"] = collectors;
  body["leader"] = is_leader_.load();
  if (!reasons.empty()) body["reasons"] = reasons;
  return HttpResponse::json(reasons.empty() ? 200 : 503, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

namespace {

std::string htmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

HttpResponse Agent::statusPage(const HttpRequest& request) const {
  auto p = pipeline();
  std::string instance;
  {
    std::lock_guard lock(mu_);
    instance = config_.agent.instance;
  }
  const nlohmann::json readiness = nlohmann::json::parse(ready().body, nullptr, false);
  const bool is_ready = readiness.value("status", "") == "ready";
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"refresh\" content=\"15\"><title>dbpulse " +
      htmlEscape(instance) +
      "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.ok,.ready{color:#080}"
      ".failing,.firing,.not_ready{color:#b00}.pending,.off{color:#a60}</style></head><body>"
      "<h1>dbpulse</h1><p>instance <b>" +
      htmlEscape(instance) + "</b>, version " DBPULSE_VERSION ", <span class=\"" +
      (is_ready ? "ready\">ready" : "not_ready\">not ready") + "</span>, " +
      (!election_on_ ? "no leader election"
       : is_leader_  ? "elected leader (runs the database-wide collectors)"
                     : "follower (database-wide collectors on standby)") +
      "</p>\n";
  if (readiness.contains("reasons")) {
    html += "<ul>";
    for (const auto& r : readiness["reasons"]) html += "<li>" + htmlEscape(r.get<std::string>());
    html += "</ul>\n";
  }
  html +=
      "<p><a href=\"/metrics\">/metrics</a> · <a href=\"/health/ready\">/health/ready</a> · "
      "<a href=\"/admin/alerts\">/admin/alerts</a> · <a href=\"/admin/rules\">/admin/rules</a> · "
      "<a href=\"/admin/database/metrics\">/admin/database/metrics</a> · "
      "<a href=\"/admin/database/size\">/admin/database/size</a></p>\n";

  // Alerts: names and states for everyone; labels and summaries only for a caller the
  // admin routes would let in (they may carry database and user names).
  const nlohmann::json alerts = nlohmann::json::parse(rules_->alertsJson(), nullptr, false);
  const bool detailed = checkAdmin(request).denial.status == 0;
  size_t firing = 0, pending = 0;
  std::string alert_rows;
  if (alerts.contains("alerts")) {
    for (const auto& a : alerts["alerts"]) {
      const std::string state = a.value("state", "");
      if (state == "firing") ++firing;
      if (state == "pending") ++pending;
      if (state != "firing" && state != "pending") continue;
      const auto& labels = a["labels"];
      alert_rows += "<tr><td>" + htmlEscape(labels.value("alertname", "")) + "</td><td class=\"" +
                    state + "\">" + state + "</td><td>" + htmlEscape(labels.value("severity", "")) +
                    "</td><td>" + htmlEscape(a.value("activeAt", "")) + "</td>";
      if (detailed) {
        std::string shown;
        for (const auto& [k, v] : labels.items()) {
          if (k == "alertname" || k == "severity" || k == "instance") continue;
          shown += (shown.empty() ? "" : ", ") + k + "=" + v.get<std::string>();
        }
        alert_rows += "<td>" + htmlEscape(shown) + "</td><td>" +
                      htmlEscape(a["annotations"].value("summary", "")) + "</td>";
      }
      alert_rows += "</tr>\n";
    }
  }
  html += "<h2>Alerts</h2><p>" + std::to_string(firing) + " firing, " + std::to_string(pending) +
          " pending, " + std::to_string(rules_->ruleCount()) + " rules loaded</p>\n";
  if (!alert_rows.empty()) {
    html += "<table><tr><th>alert</th><th>state</th><th>severity</th><th>active since</th>";
    if (detailed) html += "<th>labels</th><th>summary</th>";
    html += "</tr>\n" + alert_rows + "</table>\n";
    if (!detailed)
      html += "<p>Labels and summaries: <code>GET /admin/alerts</code> with the admin token.</p>\n";
  }

  html +=
      "<h2>Collectors</h2><table><tr><th>collector</th><th>state</th><th>last run</th>"
      "<th>runs</th><th>errors</th><th>last error</th></tr>\n";
  if (p) {
    for (const auto& s : p->scheduler->status()) {
      std::string state = !s.disabled_reason.empty() ? "off"
                          : s.standby                ? "standby"
                          : !s.has_run               ? "pending"
                          : s.last_success           ? "ok"
                                                     : "failing";
      std::string shown = state == "off" ? "off (" + s.disabled_reason + ")" : state;
      html += "<tr><td>" + htmlEscape(s.name) + "</td><td class=\"" + state + "\">" +
              htmlEscape(shown) + "</td><td>" + std::to_string(s.last_duration.count()) +
              " ms</td><td>" + std::to_string(s.runs) + "</td><td>" + std::to_string(s.errors) +
              "</td><td>" + htmlEscape(s.last_error) + "</td></tr>\n";
    }
  }
  html += "</table></body></html>\n";
  return HttpResponse{200, "text/html; charset=utf-8", std::move(html), {}};
}

int Agent::runOnce(const Config& config, OutputFormat format, std::ostream& out) {
  SystemClock clock;
  SampleStore store(clock);
  auto p = buildPipeline(config, store, clock);
  p->scheduler->runAllOnce();
  bool all_ok = true;
  for (const auto& s : p->scheduler->status()) {
    if (s.last_success) continue;
    if (!s.disabled_reason.empty()) {
      // Switched off by a missing prerequisite: a fact about the server, not a failure.
      spdlog::warn("collector {} is off: {}", s.name, s.last_error);
      continue;
    }
    all_ok = false;
    spdlog::error("collector {}: {}", s.name, s.last_error);
  }
  auto snap = store.snapshot();
  if (format == OutputFormat::kPrometheus) {
    out << exporters::renderText(*snap);
  } else {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& fam : snap->families) {
      for (const auto& s : fam.series) {
        nlohmann::json labels = nlohmann::json::object();
        for (const auto& l : s.labels.items()) labels[l.name] = l.value;
        j.push_back({{"name", fam.name}, {"labels", labels}, {"value", s.value}});
      }
    }
    out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  return all_ok ? 0 : 1;
}

}  // namespace dbpulse
