#pragma once
// Reading PgRows, the one place for it: ResultReader gives checked, typed access to a result
// by column name (for parse functions); the free functions below read single fields by
// position (numbers, booleans) for callers that take rows apart by hand. The shape is checked
// once (every needed column present, every row as wide as the header); fields are then
// read as text or numbers without further error plumbing.

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"
#include "collectors/clients/postgres/pg_rows.h"

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

// Parses a whole field as a number; nullopt for NULL, empty, trailing garbage or not finite.
std::optional<double> parseNumber(const std::optional<std::string>& field);

// Field `col` of row `row`; nullopt for NULL or a position outside the result.
std::optional<std::string> fieldAt(const PgRows& rows, size_t row, size_t col);

namespace pgutil {

// Parses a whole field as a number; false for NULL, empty or trailing garbage.
bool toDouble(const std::optional<std::string>& field, double& out);
bool toInt64(const std::optional<std::string>& field, long long& out);
// The field as a number, or `fallback` where toDouble() would say false.
double toDoubleOr(const std::optional<std::string>& field, double fallback = 0);

// "t"/"true" -> true; anything else (including NULL) -> false.
bool toBool(const std::optional<std::string>& field);

// Every column in `names` exists in `rows`; otherwise an Internal status naming the first
// missing one ("COLLECTOR: result has no column 'x'").
Status requireColumns(std::string_view collector, const PgRows& rows,
                      std::initializer_list<std::string_view> names);

}  // namespace pgutil

}  // namespace dbpulse::collectors
