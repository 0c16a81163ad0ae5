#pragma once
// ResultReader: checked, typed access to a PgRows result by column name, for the parse
// functions of the statements, cache, tables and size collectors. The shape is checked
// once (every needed column present, every row as wide as the header); fields are then
// read as text or numbers without further error plumbing.
//
// Also the one place that turns a failed query into the Status a collector returns.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"
#include "collectors/postgres/pg_rows.h"

namespace dbpulse::collectors {

class ResultReader {
 public:
  // Internal error "COLLECTOR: result has no column 'x'" (or a short row) when the shape
  // is not what the collector's SQL produces. `rows` must outlive the reader.
  static Result<ResultReader> open(std::string_view collector, const PgRows& rows,
                                   const std::vector<std::string_view>& columns);

  size_t size() const { return rows_->rows.size(); }

  // Index of a column given to open(); -1 for any other name (a bug in the caller).
  int col(std::string_view name) const;

  bool isNull(size_t row, int col) const { return !field(row, col).has_value(); }
  // "" for NULL.
  std::string text(size_t row, int col) const { return field(row, col).value_or(""); }
  // The whole field as a number; nullopt for NULL or anything that does not parse fully.
  std::optional<double> number(size_t row, int col) const;
  double numberOr(size_t row, int col, double fallback) const {
    return number(row, col).value_or(fallback);
  }
  // PostgreSQL's boolean text: "t" / "true" are true, anything else (NULL too) is false.
  bool flag(size_t row, int col) const;

 private:
  ResultReader(const PgRows& rows, std::vector<std::pair<std::string_view, int>> index)
      : rows_(&rows), index_(std::move(index)) {}
  const std::optional<std::string>& field(size_t row, int col) const;

  const PgRows* rows_;
  std::vector<std::pair<std::string_view, int>> index_;  // name -> position in rows_
};

// Parses a whole field as a number; nullopt for NULL, empty or trailing garbage.
std::optional<double> parseNumber(const std::optional<std::string>& field);

// What a collector returns for a failed query: PermissionDenied becomes
// FailedPrecondition("privilege_missing: COLLECTOR: <server message>; fix: <fix>") so the
// scheduler switches the collector off visibly and names the missing privilege; every
// other Status is returned unchanged (Unavailable, DeadlineExceeded, ...).
Status collectorQueryError(std::string_view collector, const Status& status,
                           std::string_view fix = "GRANT pg_monitor TO the dbpulse role");

}  // namespace dbpulse::collectors
