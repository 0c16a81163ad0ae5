#pragma once
// dbpulse's configuration: the TOML file (see README and DESIGN.md) after
// validation, environment overrides (DBPULSE_<SECTION>_<KEY>) and *_file secrets.
// A Config value is immutable once loaded; a reload builds a new one.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/duration.h"
#include "agent/core/status.h"

namespace dbpulse {

enum class LogFormat { kJson, kText };

struct HostPort {
  std::string host;
  int port = 0;  // 0 = pick a free one
};

struct AgentSection {
  std::string listen = "0.0.0.0:9470";
  HostPort listen_addr{"0.0.0.0", 9470};
  std::string state_dir = "/var/lib/dbpulse";
  std::string admin_token_file;
  std::string admin_token;  // read from admin_token_file; never logged
  std::string instance;     // default: the host name
  LogFormat log_format = LogFormat::kJson;
  std::string log_level = "info";
  bool leader_election = true;
  int worker_threads = 2;      // collector thread pool size
  int http_threads = 4;        // threads for /metrics, /health, /health/ready and /
  int max_connections = 2048;  // open HTTP connections (idle ones included); takes effect at start
  int64_t max_request_body_bytes = 64 * 1024;
  Duration request_timeout{10'000};  // first byte to complete request (else 408)
  // /admin/* calls per client address: a token bucket of admin_rate_burst calls refilled at
  // admin_rate_limit a second (0 = no limit); beyond it 429 with Retry-After.
  int admin_rate_limit = 50;
  int admin_rate_burst = 100;
  // How far back the sample store keeps each series' points (rule ranges such as [1h] need
  // that much); the store holds history / (shortest interval) points per series, capped.
  // Takes effect at start.
  Duration history{15 * 60'000};
};

struct PostgresSection {
  std::string dsn = "host=127.0.0.1 port=5432 dbname=chat user=dbpulse";
  std::string password_file;
  std::string password;  // read from password_file; never logged
  Duration statement_timeout{5000};
  Duration lock_timeout{1000};
  Duration connect_timeout{5000};
};

struct RedisSection {
  std::string address = "127.0.0.1:6379";
  HostPort addr{"127.0.0.1", 6379};
  std::string password_file;
  std::string password;
};

struct PgbouncerSection {
  std::string dsn;
};

struct CompanionSection {
  bool reexport = false;  // re-export the chat server's series on /metrics
  std::string health_url;
  std::string metrics_url;
  std::string pid_file;
  std::string process_name;
};

struct CollectorSection {
  bool enabled = true;
  Duration interval{15'000};
  Duration timeout{5000};
  std::string group;  // PostgreSQL session group; "" = the catalogue's default
  // The collector's own keys that are set (CatalogEntry::options: top_n, threshold): a count,
  // or a duration in milliseconds. Absent: the collector's default.
  std::map<std::string, int64_t> options;
};

struct RulesSection {
  std::vector<std::string> files{"rules/default/*.yml"};
  Duration evaluation_interval{15'000};
};

struct AlertmanagerSection {
  std::vector<std::string> urls;
  Duration resend_interval{60'000};
};

struct MaintenanceSection {
  bool enabled = true;
  std::string window = "0 2 * * *";  // validated by CronSchedule::parse
  Duration window_duration{2 * 3'600'000};
  bool dry_run = false;
  // Tables ("schema.table") that get VACUUM FULL instead of VACUUM; none by default.
  std::vector<std::string> vacuum_full;
  Duration table_timeout{30 * 60'000};  // statement_timeout of one table's VACUUM/ANALYZE
  int max_active_sessions = 20;         // busier than this: wait before the next table
};

struct AdvisorSection {
  std::string hypopg = "auto";
  bool allow_analyze = true;  // analyze-query may execute ("analyze": true) read-only statements
};

struct Config {
  std::string path;  // the file it came from
  AgentSection agent;
  PostgresSection postgres;
  RedisSection redis;
  PgbouncerSection pgbouncer;
  CompanionSection companion;
  // Every catalogued collector has an entry (defaults filled in), keyed by name.
  std::map<std::string, CollectorSection> collectors;
  RulesSection rules;
  AlertmanagerSection alertmanager;
  MaintenanceSection maintenance;
  AdvisorSection advisor;
};

struct ConfigError {
  std::string file;
  int line = 0;  // 1-based; 0 when the error has no position (env, secret file)
  int column = 0;
  std::string message;
  // "FILE:LINE:COL: message" (or "FILE: message" without a position)
  std::string toString() const;
};

using Environment = std::map<std::string, std::string>;

// Reads the process environment's DBPULSE_* variables.
Environment processEnvironment();

// Parses and validates; returns every problem found, not just the first.
// `env` supplies the DBPULSE_* overrides (tests pass their own).
struct LoadResult {
  std::optional<Config> config;
  std::vector<ConfigError> errors;
};
LoadResult loadConfigFile(const std::string& path, const Environment& env);
LoadResult loadConfigString(const std::string& text, const std::string& path,
                            const Environment& env);

// Splits "host:port" / "[v6]:port"; the port must be 0..65535.
Result<HostPort> parseHostPort(std::string_view text);

// The names of collectors that the catalogue knows (for validation messages).
const std::vector<std::string>& knownCollectorNames();
// Every config key as "section.key" ("collectors.NAME.key" for the per-collector ones), from
// the tables the loader validates with; the README is checked against it.
std::vector<std::string> knownConfigKeys();

}  // namespace dbpulse
