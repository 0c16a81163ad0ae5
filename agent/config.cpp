#include "agent/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <variant>

#include "agent/core/atomic_file.h"
#include "agent/cron.h"

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "collectors/catalog.h"
#include "rules/rule_file.h"

extern char** environ;

namespace dbpulse {
namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;   // a config larger than 1 MiB is a mistake
constexpr size_t kMaxSecretBytes = 64 << 10;  // a password or token, not a file dump
constexpr Duration kMinInterval{100};

enum class Kind { kString, kDuration, kBool, kInt, kStringList };

const char* kindName(Kind k) {
  switch (k) {
    case Kind::kString:
      return "a string";
    case Kind::kDuration:
      return "a duration string such as \"15s\"";
    case Kind::kBool:
      return "true or false";
    case Kind::kInt:
      return "an integer";
    case Kind::kStringList:
      return "an array of strings";
  }
  return "?";
}

using Value = std::variant<std::string, Duration, bool, int64_t, std::vector<std::string>>;

// One settings table (after pgbouncer's): key, type, how to apply it. An apply
// function validates the value and returns an error message, or "" when fine.
template <typename Section>
struct KeySpec {
  std::string key;
  Kind kind;
  std::function<std::string(Section&, const Value&)> apply;
};

template <typename Section, typename T>
KeySpec<Section> field(std::string key, Kind kind, T Section::*member) {
  return {std::move(key), kind, [member](Section& s, const Value& v) {
            s.*member = std::get<T>(v);
            return std::string();
          }};
}

template <typename Section>
KeySpec<Section> hostPortField(std::string key, std::string Section::*text,
                               HostPort Section::*addr) {
  return {std::move(key), Kind::kString, [text, addr](Section& s, const Value& v) {
            const auto& str = std::get<std::string>(v);
            auto hp = parseHostPort(str);
            if (!hp.ok()) return hp.status().message();
            s.*text = str;
            s.*addr = hp.value();
            return std::string();
          }};
}

// The listen address is bound as given, so it must be an IP literal: a lenient parser
// (CivetWeb's was one) reads "999.1.1.1" as 231.1.1.1, and a host name is not an address.
// "localhost" means 127.0.0.1.
KeySpec<AgentSection> listenField() {
  return {"listen", Kind::kString, [](AgentSection& s, const Value& v) {
            const auto& str = std::get<std::string>(v);
            auto hp = parseHostPort(str);
            if (!hp.ok()) return hp.status().message();
            HostPort addr = hp.value();
            if (addr.host == "localhost") addr.host = "127.0.0.1";
            in6_addr buf{};
            if (inet_pton(AF_INET, addr.host.c_str(), &buf) != 1 &&
                inet_pton(AF_INET6, addr.host.c_str(), &buf) != 1) {
              return "invalid address \"" + str + "\": \"" + addr.host +
                     "\" is not an IPv4 or IPv6 address (listen binds an address, e.g. "
                     "\"0.0.0.0:9470\", \"127.0.0.1:9470\" or \"[::]:9470\")";
            }
            s.listen = str;
            s.listen_addr = addr;
            return std::string();
          }};
}

template <typename Section>
KeySpec<Section> positiveIntField(std::string key, int Section::*member, int max) {
  return {std::move(key), Kind::kInt, [member, max](Section& s, const Value& v) {
            int64_t n = std::get<int64_t>(v);
            if (n < 1 || n > max) {
              return "must be between 1 and " + std::to_string(max) + ", got " + std::to_string(n);
            }
            s.*member = static_cast<int>(n);
            return std::string();
          }};
}

template <typename Section>
KeySpec<Section> positiveDurationField(std::string key, Duration Section::*member) {
  return {std::move(key), Kind::kDuration, [member](Section& s, const Value& v) {
            Duration d = std::get<Duration>(v);
            if (d.count() <= 0) return std::string("must be greater than 0");
            s.*member = d;
            return std::string();
          }};
}

template <typename Section>
KeySpec<Section> oneOfField(std::string key, std::string Section::*member,
                            std::vector<std::string> allowed) {
  return {std::move(key), Kind::kString,
          [member, allowed = std::move(allowed)](Section& s, const Value& v) {
            const auto& str = std::get<std::string>(v);
            if (std::find(allowed.begin(), allowed.end(), str) == allowed.end()) {
              std::string list;
              for (const auto& a : allowed) list += (list.empty() ? "\"" : ", \"") + a + "\"";
              return "must be one of " + list + ", got \"" + str + "\"";
            }
            s.*member = str;
            return std::string();
          }};
}

const std::vector<KeySpec<AgentSection>>& agentKeys() {
  static const std::vector<KeySpec<AgentSection>> k = {
      listenField(),
      field("state_dir", Kind::kString, &AgentSection::state_dir),
      field("admin_token_file", Kind::kString, &AgentSection::admin_token_file),
      field("instance", Kind::kString, &AgentSection::instance),
      {"log_format", Kind::kString,
       [](AgentSection& s, const Value& v) {
         const auto& f = std::get<std::string>(v);
         if (f == "json")
           s.log_format = LogFormat::kJson;
         else if (f == "text")
           s.log_format = LogFormat::kText;
         else
           return "must be \"json\" or \"text\", got \"" + f + "\"";
         return std::string();
       }},
      oneOfField<AgentSection>("log_level", &AgentSection::log_level,
                               {"trace", "debug", "info", "warn", "error"}),
      field("leader_election", Kind::kBool, &AgentSection::leader_election),
      positiveIntField<AgentSection>("worker_threads", &AgentSection::worker_threads, 64),
      positiveIntField<AgentSection>("http_threads", &AgentSection::http_threads, 256),
      {"max_connections", Kind::kInt,
       [](AgentSection& s, const Value& v) {
         int64_t n = std::get<int64_t>(v);
         if (n < 16 || n > 65536) return "must be between 16 and 65536, got " + std::to_string(n);
         s.max_connections = static_cast<int>(n);
         return std::string();
       }},
      {"admin_rate_limit", Kind::kInt,
       [](AgentSection& s, const Value& v) {
         int64_t n = std::get<int64_t>(v);
         if (n < 0 || n > 100000) {
           return "must be between 0 (no limit) and 100000 calls a second, got " +
                  std::to_string(n);
         }
         s.admin_rate_limit = static_cast<int>(n);
         return std::string();
       }},
      positiveIntField<AgentSection>("admin_rate_burst", &AgentSection::admin_rate_burst, 100000),
      {"max_request_body_bytes", Kind::kInt,
       [](AgentSection& s, const Value& v) {
         int64_t n = std::get<int64_t>(v);
         if (n < 1024 || n > (64 << 20)) return std::string("must be between 1024 and 67108864");
         s.max_request_body_bytes = n;
         return std::string();
       }},
      positiveDurationField<AgentSection>("request_timeout", &AgentSection::request_timeout),
      positiveDurationField<AgentSection>("history", &AgentSection::history),
  };
  return k;
}

const std::vector<KeySpec<PostgresSection>>& postgresKeys() {
  static const std::vector<KeySpec<PostgresSection>> k = {
      field("dsn", Kind::kString, &PostgresSection::dsn),
      field("password_file", Kind::kString, &PostgresSection::password_file),
      positiveDurationField<PostgresSection>("statement_timeout",
                                             &PostgresSection::statement_timeout),
      positiveDurationField<PostgresSection>("lock_timeout", &PostgresSection::lock_timeout),
      positiveDurationField<PostgresSection>("connect_timeout", &PostgresSection::connect_timeout),
  };
  return k;
}

const std::vector<KeySpec<RedisSection>>& redisKeys() {
  static const std::vector<KeySpec<RedisSection>> k = {
      hostPortField<RedisSection>("address", &RedisSection::address, &RedisSection::addr),
      field("password_file", Kind::kString, &RedisSection::password_file),
  };
  return k;
}

const std::vector<KeySpec<PgbouncerSection>>& pgbouncerKeys() {
  static const std::vector<KeySpec<PgbouncerSection>> k = {
      field("dsn", Kind::kString, &PgbouncerSection::dsn),
  };
  return k;
}

const std::vector<KeySpec<CompanionSection>>& companionKeys() {
  static const std::vector<KeySpec<CompanionSection>> k = {
      field("reexport", Kind::kBool, &CompanionSection::reexport),
      field("health_url", Kind::kString, &CompanionSection::health_url),
      field("metrics_url", Kind::kString, &CompanionSection::metrics_url),
      field("pid_file", Kind::kString, &CompanionSection::pid_file),
      field("process_name", Kind::kString, &CompanionSection::process_name),
  };
  return k;
}

// A collector's own key (CatalogEntry::options), kept in CollectorSection::options.
KeySpec<CollectorSection> optionField(const collectors::CollectorOption& option) {
  using OptionKind = collectors::CollectorOption::Kind;
  const std::string key = option.key;
  if (option.kind == OptionKind::kCount) {
    return {key, Kind::kInt, [key](CollectorSection& s, const Value& v) {
              int64_t n = std::get<int64_t>(v);
              if (n < 1 || n > 10'000) {
                return "must be between 1 and 10000, got " + std::to_string(n);
              }
              s.options[key] = n;
              return std::string();
            }};
  }
  return {key, Kind::kDuration, [key](CollectorSection& s, const Value& v) {
            Duration d = std::get<Duration>(v);
            if (d.count() <= 0) return std::string("must be greater than 0");
            s.options[key] = d.count();
            return std::string();
          }};
}

// The keys of every [collectors.NAME]: the common ones, then each option some catalogue entry
// reads. Every collector accepts every option (the README promises "every collector has these
// keys"); one that does not read it ignores it.
const std::vector<KeySpec<CollectorSection>>& collectorKeys() {
  static const std::vector<KeySpec<CollectorSection>> k = [] {
    std::vector<KeySpec<CollectorSection>> keys = {
        field("enabled", Kind::kBool, &CollectorSection::enabled),
        positiveDurationField<CollectorSection>("interval", &CollectorSection::interval),
        positiveDurationField<CollectorSection>("timeout", &CollectorSection::timeout),
        {"group", Kind::kString,
         [](CollectorSection& s, const Value& v) {
           const auto& g = std::get<std::string>(v);
           if (g.empty() || g.size() > 32 || !std::all_of(g.begin(), g.end(), [](char c) {
                 return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
               })) {
             return "must be 1-32 letters, digits, '_' or '-', got \"" + g + "\"";
           }
           s.group = g;
           return std::string();
         }},
    };
    for (const auto& entry : collectors::catalog()) {
      for (const auto& option : entry.options) {
        if (std::none_of(keys.begin(), keys.end(),
                         [&](const auto& spec) { return spec.key == option.key; })) {
          keys.push_back(optionField(option));
        }
      }
    }
    return keys;
  }();
  return k;
}

const std::vector<KeySpec<RulesSection>>& rulesKeys() {
  static const std::vector<KeySpec<RulesSection>> k = {
      field("files", Kind::kStringList, &RulesSection::files),
      positiveDurationField<RulesSection>("evaluation_interval",
                                          &RulesSection::evaluation_interval),
  };
  return k;
}

const std::vector<KeySpec<AlertmanagerSection>>& alertmanagerKeys() {
  static const std::vector<KeySpec<AlertmanagerSection>> k = {
      {"urls", Kind::kStringList,
       [](AlertmanagerSection& s, const Value& v) {
         const auto& urls = std::get<std::vector<std::string>>(v);
         for (const auto& u : urls) {
           if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0) {
             return "\"" + u + "\" is not an http:// or https:// URL";
           }
         }
         s.urls = urls;
         return std::string();
       }},
      positiveDurationField<AlertmanagerSection>("resend_interval",
                                                 &AlertmanagerSection::resend_interval),
  };
  return k;
}

const std::vector<KeySpec<MaintenanceSection>>& maintenanceKeys() {
  static const std::vector<KeySpec<MaintenanceSection>> k = {
      field("enabled", Kind::kBool, &MaintenanceSection::enabled),
      {"window", Kind::kString,
       [](MaintenanceSection& s, const Value& v) {
         const auto& w = std::get<std::string>(v);
         auto parsed = CronSchedule::parse(w);
         if (!parsed.ok()) return parsed.status().message() + " (in \"" + w + "\")";
         s.window = w;
         return std::string();
       }},
      positiveDurationField<MaintenanceSection>("window_duration",
                                                &MaintenanceSection::window_duration),
      field("dry_run", Kind::kBool, &MaintenanceSection::dry_run),
      field("vacuum_full", Kind::kStringList, &MaintenanceSection::vacuum_full),
      positiveDurationField<MaintenanceSection>("table_timeout",
                                                &MaintenanceSection::table_timeout),
      positiveIntField<MaintenanceSection>("max_active_sessions",
                                           &MaintenanceSection::max_active_sessions, 10'000),
  };
  return k;
}

const std::vector<KeySpec<AdvisorSection>>& advisorKeys() {
  static const std::vector<KeySpec<AdvisorSection>> k = {
      oneOfField<AdvisorSection>("hypopg", &AdvisorSection::hypopg, {"auto", "require", "off"}),
      field("allow_analyze", Kind::kBool, &AdvisorSection::allow_analyze),
  };
  return k;
}

// A section's keys applied to the whole Config (its part picked by `part`).
template <typename Section>
std::vector<KeySpec<Config>> inConfig(const std::vector<KeySpec<Section>>& keys,
                                      std::function<Section&(Config&)> part) {
  std::vector<KeySpec<Config>> out;
  for (const auto& k : keys) {
    out.push_back({k.key, k.kind, [apply = k.apply, part](Config& c, const Value& v) {
                     return apply(part(c), v);
                   }});
  }
  return out;
}

template <typename Section>
std::vector<KeySpec<Config>> inConfig(const std::vector<KeySpec<Section>>& keys,
                                      Section Config::*member) {
  return inConfig<Section>(keys, [member](Config& c) -> Section& { return c.*member; });
}

// A [section] of the file and its keys.
struct SectionSpec {
  std::string name;
  std::vector<KeySpec<Config>> keys;
};

// Every section of the file, one row each, in the order messages list them. [collectors]
// has no keys of its own: it holds a [collectors.NAME] per catalogue entry
// (collectorSections()).
const std::vector<SectionSpec>& sections() {
  static const std::vector<SectionSpec> k = {
      {"agent", inConfig(agentKeys(), &Config::agent)},
      {"postgres", inConfig(postgresKeys(), &Config::postgres)},
      {"redis", inConfig(redisKeys(), &Config::redis)},
      {"pgbouncer", inConfig(pgbouncerKeys(), &Config::pgbouncer)},
      {"companion", inConfig(companionKeys(), &Config::companion)},
      {"collectors", {}},
      {"rules", inConfig(rulesKeys(), &Config::rules)},
      {"alertmanager", inConfig(alertmanagerKeys(), &Config::alertmanager)},
      {"maintenance", inConfig(maintenanceKeys(), &Config::maintenance)},
      {"advisor", inConfig(advisorKeys(), &Config::advisor)},
  };
  return k;
}

// [collectors.NAME] for each catalogue entry, by name.
const std::vector<SectionSpec>& collectorSections() {
  static const std::vector<SectionSpec> k = [] {
    std::vector<SectionSpec> out;
    for (const auto& e : collectors::catalog()) {
      out.push_back({"collectors." + e.name,
                     inConfig<CollectorSection>(collectorKeys(),
                                                [name = e.name](Config& c) -> CollectorSection& {
                                                  return c.collectors.at(name);
                                                })});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
  }();
  return k;
}

const SectionSpec* findSection(const std::vector<SectionSpec>& specs, const std::string& name) {
  for (const auto& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// Levenshtein distance, for "did you mean" hints on typos.
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggest(std::string_view got, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = 3;  // only close matches are worth suggesting
  for (const auto& k : known) {
    size_t d = editDistance(got, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  if (!best.empty()) return "; did you mean '" + best + "'?";
  std::string list;
  for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
  return "; known: " + list;
}

// "collectors.process.interval" -> "DBPULSE_COLLECTORS_PROCESS_INTERVAL"
std::string envVarName(const std::string& key) {
  std::string var = "DBPULSE_";
  for (char c : key) {
    var += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return var;
}

struct Position {
  int line = 0, column = 0;
};

class Loader {
 public:
  Loader(std::string path, const Environment& env) : path_(std::move(path)), env_(env) {}

  LoadResult load(const std::string& text) {
    Config cfg;
    cfg.path = path_;
    for (const auto& e : collectors::catalog()) {
      CollectorSection section;
      section.interval = e.default_interval;
      section.timeout = e.default_timeout;
      section.group = e.default_group;
      cfg.collectors[e.name] = section;
    }
    if (text.size() > kMaxConfigBytes) {
      error({}, "config file is larger than 1 MiB");
      return finish(std::move(cfg));
    }
    toml::table root;
    try {
      root = toml::parse(text, path_);
    } catch (const toml::parse_error& e) {
      error(Position{static_cast<int>(e.source().begin.line),
                     static_cast<int>(e.source().begin.column)},
            std::string(e.description()));
      return finish(std::move(cfg));
    }

    for (auto&& [key, node] : root) {
      const std::string name(key.str());
      const Position pos = positionOf(key);
      if (name == "collectors") {
        loadCollectors(node, cfg);
        continue;
      }
      const SectionSpec* spec = findSection(sections(), name);
      if (spec == nullptr) {
        std::vector<std::string> names;
        for (const auto& s : sections()) names.push_back(s.name);
        error(pos, "unknown section [" + name + "]" + suggest(name, names));
        continue;
      }
      auto* table = node.as_table();
      if (table == nullptr) {
        error(pos, "[" + name + "] must be a table");
        continue;
      }
      loadSection(*spec, *table, cfg);
    }
    applyEnvironment(cfg);
    validate(cfg);
    return finish(std::move(cfg));
  }

 private:
  template <typename T>
  static Position positionOf(const T& sourced) {
    const auto& src = sourced.source();
    return Position{static_cast<int>(src.begin.line), static_cast<int>(src.begin.column)};
  }

  void error(Position pos, std::string message) {
    errors_.push_back(ConfigError{path_, pos.line, pos.column, std::move(message)});
  }
  void envError(const std::string& var, std::string message) {
    errors_.push_back(ConfigError{"environment variable " + var, 0, 0, std::move(message)});
  }

  LoadResult finish(Config cfg) {
    LoadResult r;
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const ConfigError& a, const ConfigError& b) {
                       return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                     });
    r.errors = std::move(errors_);
    if (r.errors.empty()) r.config = std::move(cfg);
    return r;
  }

  void loadCollectors(toml::node& node, Config& cfg) {
    auto* table = node.as_table();
    if (table == nullptr) {
      error(positionOf(node), "[collectors] must be a table of [collectors.NAME] sections");
      return;
    }
    std::vector<std::string> names;
    for (const auto& e : collectors::catalog()) names.push_back(e.name);
    for (auto&& [key, sub] : *table) {
      const std::string name(key.str());
      const SectionSpec* spec = findSection(collectorSections(), "collectors." + name);
      if (spec == nullptr) {
        error(positionOf(key), "unknown collector '" + name + "'" + suggest(name, names));
        continue;
      }
      auto* sub_table = sub.as_table();
      if (sub_table == nullptr) {
        error(positionOf(key), "[collectors." + name + "] must be a table");
        continue;
      }
      loadSection(*spec, *sub_table, cfg);
    }
  }

  void loadSection(const SectionSpec& spec_of_section, toml::table& table, Config& out) {
    const std::string& section = spec_of_section.name;
    const auto& specs = spec_of_section.keys;
    for (auto&& [key, node] : table) {
      const std::string name(key.str());
      const Position pos = positionOf(key);
      auto spec = std::find_if(specs.begin(), specs.end(),
                               [&](const KeySpec<Config>& s) { return s.key == name; });
      if (spec == specs.end()) {
        std::vector<std::string> known;
        for (const auto& s : specs) known.push_back(s.key);
        error(pos, "unknown key '" + name + "' in [" + section + "]" + suggest(name, known));
        continue;
      }
      const Position value_pos = positionOf(node);
      std::string why;
      auto value = fromNode(node, spec->kind, why);
      if (!value) {
        error(value_pos, section + "." + name + ": " + why);
        continue;
      }
      if (std::string msg = spec->apply(out, *value); !msg.empty()) {
        error(value_pos, section + "." + name + ": " + msg);
        continue;
      }
      positions_[section + "." + name] = value_pos;
    }
  }

  static std::optional<Value> fromNode(toml::node& node, Kind kind, std::string& why) {
    auto expected = [&]() {
      why = std::string("expected ") + kindName(kind) + ", got " + typeName(node);
      return std::nullopt;
    };
    switch (kind) {
      case Kind::kString:
        if (auto s = node.value<std::string>(); s && node.is_string()) return Value(*s);
        return expected();
      case Kind::kBool:
        if (node.is_boolean()) return Value(*node.value<bool>());
        return expected();
      case Kind::kInt:
        if (node.is_integer()) return Value(*node.value<int64_t>());
        return expected();
      case Kind::kDuration: {
        if (!node.is_string()) return expected();
        auto d = parseDuration(*node.value<std::string>());
        if (!d.ok()) {
          why = d.status().message();
          return std::nullopt;
        }
        return Value(d.value());
      }
      case Kind::kStringList: {
        auto* arr = node.as_array();
        if (arr == nullptr) return expected();
        std::vector<std::string> out;
        for (auto& el : *arr) {
          if (!el.is_string()) {
            why = "expected an array of strings, found " + typeName(el);
            return std::nullopt;
          }
          out.push_back(*el.value<std::string>());
        }
        return Value(std::move(out));
      }
    }
    return std::nullopt;
  }

  static std::string typeName(const toml::node& node) {
    switch (node.type()) {
      case toml::node_type::string:
        return "a string";
      case toml::node_type::integer:
        return "an integer";
      case toml::node_type::floating_point:
        return "a float";
      case toml::node_type::boolean:
        return "a boolean";
      case toml::node_type::array:
        return "an array";
      case toml::node_type::table:
        return "a table";
      default:
        return "a date/time";
    }
  }

  static std::optional<Value> fromEnv(const std::string& text, Kind kind, std::string& why) {
    switch (kind) {
      case Kind::kString:
        return Value(text);
      case Kind::kBool:
        if (text == "true" || text == "1") return Value(true);
        if (text == "false" || text == "0") return Value(false);
        why = "expected true or false, got \"" + text + "\"";
        return std::nullopt;
      case Kind::kInt: {
        try {
          size_t used = 0;
          int64_t n = std::stoll(text, &used);
          if (used == text.size()) return Value(n);
        } catch (const std::exception&) {
        }
        why = "expected an integer, got \"" + text + "\"";
        return std::nullopt;
      }
      case Kind::kDuration: {
        auto d = parseDuration(text);
        if (!d.ok()) {
          why = d.status().message();
          return std::nullopt;
        }
        return Value(d.value());
      }
      case Kind::kStringList: {
        std::vector<std::string> out;
        std::stringstream ss(text);
        std::string item;
        while (std::getline(ss, item, ',')) {
          if (!item.empty()) out.push_back(item);
        }
        return Value(std::move(out));
      }
    }
    return std::nullopt;
  }

  void envSection(const SectionSpec& spec_of_section, Config& out) {
    const std::string& section = spec_of_section.name;
    for (const auto& spec : spec_of_section.keys) {
      const std::string var = envVarName(section + "." + spec.key);
      auto it = env_.find(var);
      if (it == env_.end()) continue;
      std::string why;
      auto value = fromEnv(it->second, spec.kind, why);
      if (!value) {
        envError(var, why);
        continue;
      }
      if (std::string msg = spec.apply(out, *value); !msg.empty()) envError(var, msg);
      positions_.erase(section + "." + spec.key);  // now comes from the environment
      env_overridden_.insert(section + "." + spec.key);
    }
  }

  void applyEnvironment(Config& cfg) {
    for (const auto& spec : sections()) envSection(spec, cfg);
    for (const auto& spec : collectorSections()) envSection(spec, cfg);
  }

  // Reads a *_file secret; trailing newlines (as `echo` and Kubernetes leave them) are dropped.
  // Only a small regular file is read: a FIFO or /dev/zero must not hang or fill memory.
  void readSecret(const std::string& key, const std::string& file, std::string& out) {
    if (file.empty()) return;
    auto text = readSmallFile(file, kMaxSecretBytes);
    if (!text.ok()) {
      const std::string why = text.status().code() == StatusCode::kInvalidArgument
                                  ? "larger than " + std::to_string(kMaxSecretBytes) + " bytes"
                                  : text.status().message();
      keyError(key, "cannot read secret file \"" + file + "\": " + why);
      return;
    }
    out = std::move(text.value());
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    if (out.empty()) keyError(key, "secret file \"" + file + "\" is empty");
  }

  void validate(Config& cfg) {
    readSecret("postgres.password_file", cfg.postgres.password_file, cfg.postgres.password);
    readSecret("redis.password_file", cfg.redis.password_file, cfg.redis.password);
    readSecret("agent.admin_token_file", cfg.agent.admin_token_file, cfg.agent.admin_token);
    for (auto& [name, c] : cfg.collectors) {
      const std::string key = "collectors." + name;
      if (c.interval < kMinInterval) {
        keyError(key + ".interval", "must be at least " + formatDuration(kMinInterval));
      }
      if (c.timeout <= c.interval) continue;
      if (explicitlySet(key + ".timeout")) {
        keyError(key + ".timeout", "(" + formatDuration(c.timeout) +
                                       ") must not exceed interval (" + formatDuration(c.interval) +
                                       ")");
      } else {
        // The default timeout is ours, not the operator's: a short interval shortens it.
        c.timeout = c.interval;
      }
    }
    if (cfg.agent.instance.empty()) {
      char host[256] = {};
      if (gethostname(host, sizeof(host) - 1) == 0) cfg.agent.instance = host;
    }
  }

  bool explicitlySet(const std::string& key) const {
    return positions_.count(key) > 0 || env_overridden_.count(key) > 0;
  }

  // An error about one key: at its position in the file, or naming the environment
  // variable it came from.
  void keyError(const std::string& key, std::string message) {
    if (auto it = positions_.find(key); it != positions_.end()) {
      error(it->second, key + ": " + std::move(message));
    } else if (env_overridden_.count(key) > 0) {
      envError(envVarName(key), std::move(message));
    } else {
      error({}, key + ": " + std::move(message));
    }
  }

  std::string path_;
  const Environment& env_;
  std::vector<ConfigError> errors_;
  std::map<std::string, Position> positions_;  // "section.key" -> where its value is
  std::set<std::string> env_overridden_;       // "section.key" set from the environment
};

}  // namespace

std::string ConfigError::toString() const {
  if (line > 0)
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
  return file + ": " + message;
}

Environment processEnvironment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.rfind("DBPULSE_", 0) != 0) continue;
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

LoadResult loadConfigString(const std::string& text, const std::string& path,
                            const Environment& env) {
  return Loader(path, env).load(text);
}

LoadResult loadConfigFile(const std::string& path, const Environment& env) {
  // The file named on the command line may be a pipe (check-config <(...), /dev/stdin):
  // read as a stream, one byte over the cap so that loadConfigString reports the size.
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.errors.push_back(ConfigError{path, 0, 0, "cannot open config file"});
    return r;
  }
  std::string text;
  text.resize(kMaxConfigBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  LoadResult r = loadConfigString(text, path, env);
  if (!r.config) return r;
  // The rule files are part of the configuration: a bad one fails check-config and start,
  // and a reload that brings one is rejected as a whole.
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  rules::RuleSet set = rules::loadRuleFiles(r.config->rules.files, dir);
  for (const auto& e : set.errors) {
    r.errors.push_back(ConfigError{e.file, e.line, e.column, e.message});
  }
  if (!set.ok()) r.config.reset();
  return r;
}

Result<HostPort> parseHostPort(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return invalidArgument("invalid address \"" + std::string(text) + "\": " + why +
                           " (expected host:port, e.g. \"127.0.0.1:9470\" or \"[::1]:9470\")");
  };
  std::string host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("missing port");
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port");
    host = std::string(text.substr(0, colon));
    if (host.find(':') != std::string::npos) return bad("IPv6 addresses need brackets");
    port = text.substr(colon + 1);
  }
  if (host.empty()) return bad("missing host");
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad("port must be a number");
  }
  int p = std::stoi(std::string(port));
  if (p > 65535) return bad("port must be 0..65535");
  return HostPort{host, p};
}

std::vector<std::string> knownConfigKeys() {
  std::vector<std::string> out;
  for (const auto& section : sections()) {
    // Every [collectors.NAME] has the same keys.
    const auto& keys =
        section.name == "collectors" ? collectorSections().front().keys : section.keys;
    const std::string name = section.name == "collectors" ? "collectors.NAME" : section.name;
    for (const auto& k : keys) out.push_back(name + "." + k.key);
  }
  return out;
}

const std::vector<std::string>& knownCollectorNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& e : collectors::catalog()) n.push_back(e.name);
    return n;
  }();
  return names;
}

}  // namespace dbpulse
