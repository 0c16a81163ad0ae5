#pragma once
// JSON views for the admin API's database routes, built from the latest snapshot
// and the collectors' detail accessors. No database I/O: like /metrics, these read
// what the collectors found on their last run. Null collectors (disabled, not
// configured, or not yet run) give empty sections.

#include <string>

namespace dbpulse {

struct Snapshot;
namespace collectors {
class StatementsCollector;
class LocksCollector;
class SizeCollector;
}  // namespace collectors

// GET /admin/database/metrics: connections by state, utilization, cache hit ratios, top
// slow statements (with text), longest transaction, blocked sessions.
std::string databaseMetricsJson(const Snapshot& snapshot,
                                const collectors::StatementsCollector* statements,
                                const collectors::LocksCollector* locks);

// GET /admin/database/size: databases, tables and indexes by size.
std::string databaseSizeJson(const collectors::SizeCollector* size);

}  // namespace dbpulse
