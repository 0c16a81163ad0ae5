#pragma once
// What analyze-query may execute. `"analyze": true` runs the caller's statement (EXPLAIN
// ANALYZE) in a READ ONLY transaction that is rolled back; that stops writes through this
// session, but not a function with effects outside it: pg_terminate_backend() ends other
// sessions, dblink_exec() writes through a connection of its own, a foreign table
// (postgres_fdw) reads another server. So before executing, the statement's function
// calls and operators, from its text and from its plan (where views are expanded), are
// looked up in pg_proc: a VOLATILE one outside a short allow-list (random() and the like)
// refuses the execution, and so does any Foreign Scan. Plain EXPLAIN executes nothing and
// is never refused here.
//
// The model trusts the catalogue: a function declared STABLE or IMMUTABLE that has side
// effects anyway is not caught (the planner itself may evaluate such functions while
// planning). Pure functions: no I/O, thread-safe.

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"
#include "collectors/clients/postgres/sql_session.h"

namespace dbpulse {

// Names that a statement may call, gathered before the server is asked about them.
struct CalledNames {
  std::set<std::string> functions;  // as PostgreSQL stores them (unquoted names folded)
  std::set<std::string> operators;  // operator symbols, e.g. "+", "~~", "@@"
  bool foreign_scan = false;        // the plan reads a foreign table
  std::vector<std::string> unsafe;  // names that cannot be looked up safely (refused)
};

// Every identifier followed by '(' (a call, or a keyword such as IN or COALESCE, which the
// lookup then ignores) and every operator symbol, outside string literals, quoted
// identifiers' content and comments. Schema-qualified calls count by their last part.
void collectCalls(std::string_view sql, CalledNames& out);

// The same for every expression of an EXPLAIN (VERBOSE, FORMAT JSON) plan, plus Foreign
// Scan nodes. InvalidArgument when `plan_json` is not a plan.
Status collectPlanCalls(std::string_view plan_json, CalledNames& out);

// Volatile functions that analyze-query may still execute: no effect outside the statement.
bool volatileButHarmless(std::string_view function);

// One catalog query returning a row ("function"|"operator", name) per volatile function
// among $1 and per operator among $2 that calls a volatile function; each parameter is a
// space-separated list of names.
inline constexpr const char* kVolatileLookupSql =
    "SELECT DISTINCT 'function', p.proname::text FROM pg_catalog.pg_proc p "
    "WHERE p.provolatile = 'v' AND p.proname::text = ANY (string_to_array($1, ' ')) "
    "UNION SELECT DISTINCT 'operator', o.oprname::text FROM pg_catalog.pg_operator o "
    "JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode "
    "WHERE p.provolatile = 'v' AND o.oprname::text = ANY (string_to_array($2, ' '))";
// kVolatileLookupSql's parameters for `names`: only names holding identifier or operator
// characters (so never a space) are listed.
collectors::SqlParams volatileLookupParams(const CalledNames& names);

}  // namespace dbpulse
