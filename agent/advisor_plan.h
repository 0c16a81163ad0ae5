#pragma once
// What a query plan says an index could serve. Pure functions over EXPLAIN (FORMAT JSON,
// VERBOSE) output, which qualifies every column with its relation's alias; no database I/O.
//
// Candidates come from every place a plan reads a whole table to find a few rows:
// - a sequential scan's Filter: `col = $1`, `col = ANY (ARRAY[...])` (IN lists), ranges,
//   `col ~~ $1` (LIKE, a prefix pattern can use a pattern-ops index), and expressions of one
//   column (`lower(c.email) = ...`, `(e.payload ->> 'k'::text) = ...`, a cast that an index on
//   the column does not serve) as expression keys;
// - join keys: Hash Cond, Merge Cond and a Nested Loop's Join Filter (inner, semi and anti
//   joins alike), one candidate per side;
// - the ORDER BY of a Sort right above a sequential scan (after its equality keys);
// - the columns a filtered scan reads, for a covering index (the advisor decides which).
// A key is never a cast or function mistaken for a column: a plain column is an identifier
// that EXPLAIN printed as `alias.column` and nothing else.

#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"

namespace dbpulse::advisor {

// One index key: a column, or an expression of the table's columns.
struct IndexKey {
  std::string text;         // "order_id"; "lower(email)"; "(payload ->> 'session'::text)"
  bool expression = false;  // text is an expression (written in parentheses in an index)
  bool like = false;        // compared with LIKE: a prefix needs a pattern opclass (not "C")
  int param = 0;            // the $N it is compared with, when the other side is just $N

  bool operator==(const IndexKey& o) const {
    return text == o.text && expression == o.expression && like == o.like;
  }
};

enum class CandidateSource { kFilter, kJoin };

// What one scan or join condition asks of one table.
struct PlanCandidate {
  std::string schema, table;
  CandidateSource source = CandidateSource::kFilter;
  std::vector<IndexKey> equality;  // =, = ANY
  std::vector<IndexKey> range;     // <, <=, >, >=, LIKE
  std::vector<IndexKey> sort;      // ORDER BY right above the scan
  double scan_cost = 0;            // the sequential scan's (or the join's) total cost
  // The table's columns the scan reads (its Filter and its Output), for a covering index
  // (INCLUDE) that lets the plan become an Index Only Scan; empty when unknown (a join key,
  // a whole-row reference).
  std::vector<std::string> reads;

  // Index keys to try: the equality keys, then one range key (a LIKE prefix counts) or else
  // the sort keys; at most three. Empty when there is nothing to serve.
  std::vector<IndexKey> keys() const;
};

// Every candidate in a plan, in plan order. InvalidArgument when it is not a JSON plan.
Result<std::vector<PlanCandidate>> planCandidates(std::string_view explain_json);

// Pieces, exposed for tests.
// Top-level AND conjuncts of a condition, each without its outer parentheses.
std::vector<std::string> conjuncts(std::string_view condition);
// The text without one pair of parentheses that encloses all of it.
std::string withoutOuterParens(std::string_view text);

}  // namespace dbpulse::advisor
