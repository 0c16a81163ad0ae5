#pragma once
// Small helpers shared by the PostgreSQL health collectors (indexes, locks, pgbouncer,
// replication): reading numbers out of PgRows, learning the server version before the
// first query, and turning a missing privilege into a visible switch-off.

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "agent/core/status.h"
#include "collectors/postgres/pg_rows.h"

namespace dbpulse::collectors {

class PgCaller;

namespace pgutil {

// Parses a whole field as a number; false for NULL, empty or trailing garbage.
bool toDouble(const std::optional<std::string>& field, double& out);
bool toInt64(const std::optional<std::string>& field, long long& out);
// The field as a number, or `fallback` where toDouble() would say false.
double toDoubleOr(const std::optional<std::string>& field, double fallback = 0);

// "t"/"true" -> true; anything else (including NULL) -> false.
bool toBool(const std::optional<std::string>& field);

// server_version_num of the session's server (e.g. 150004). Before the first query the
// session is not connected yet and does not know it: then this asks the server
// (`SHOW server_version_num`), which also connects. Errors are the session's.
Result<int> serverVersionNum(PgCaller& session);

// Maps a failed query's Status for collector `collector`: PermissionDenied becomes
// FailedPrecondition("privilege_missing: ...") naming `privilege_hint` (e.g. "grant
// pg_monitor to the dbpulse role"), so the scheduler switches the collector off visibly
// instead of retrying fast; every other Status is returned unchanged.
Status mapQueryError(std::string_view collector, const Status& status,
                     std::string_view privilege_hint);

// Every column in `names` exists in `rows`; otherwise an Internal status naming the first
// missing one ("COLLECTOR: result has no column 'x'").
Status requireColumns(std::string_view collector, const PgRows& rows,
                      std::initializer_list<std::string_view> names);

// Hands the heap's free pages back to the system (glibc malloc_trim). For the end of a run
// that parsed a catalogue-sized result: freed chunks otherwise stay resident between runs.
// Costs a walk over the heap (about a millisecond); any thread.
void releaseFreedMemory();

}  // namespace pgutil
}  // namespace dbpulse::collectors
