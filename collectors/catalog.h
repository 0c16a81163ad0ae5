#pragma once
// The collector catalogue: every collector name dbpulse knows, what question it
// answers, its defaults, and how to build it. Adding a collector = its files +
// one line in catalog.cpp. The same table drives config validation, --help and docs.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "collectors/collector.h"

namespace dbpulse::collectors {

class PgSession;

// What a factory may use. Pointers are null when that part is not configured.
struct CollectorEnv {
  PgSession* postgres = nullptr;
  std::string companion_pid_file;
  std::string companion_process_name;
};

enum class CollectorScope {
  kDatabase,  // database-wide: only the elected leader runs it
  kLocal,     // about this host/pod: every agent runs it
};

struct CatalogEntry {
  std::string name;
  std::string answers;  // one line for docs and --help
  CollectorScope scope;
  std::chrono::milliseconds default_interval;
  std::chrono::milliseconds default_timeout;
  // Null for names reserved by the design but not built into this version.
  std::function<std::unique_ptr<Collector>(const CollectorEnv&)> make;
};

const std::vector<CatalogEntry>& catalog();
const CatalogEntry* findCollector(const std::string& name);

}  // namespace dbpulse::collectors
