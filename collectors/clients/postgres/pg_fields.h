#pragma once
// Reading single fields of PgRows (numbers, booleans), checking a result's columns, and
// learning the server version before the first query: for every user of the PostgreSQL
// client (collectors, advisor, maintenance). ResultReader is the checked, by-name reader.

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "agent/core/status.h"
#include "collectors/clients/postgres/pg_rows.h"

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

// Every column in `names` exists in `rows`; otherwise an Internal status naming the first
// missing one ("COLLECTOR: result has no column 'x'").
Status requireColumns(std::string_view collector, const PgRows& rows,
                      std::initializer_list<std::string_view> names);

}  // namespace pgutil
}  // namespace dbpulse::collectors
