#pragma once
// ResultReader: checked, typed access to a PgRows result by column name, for the parse
// functions of the collectors and the other users of the PostgreSQL client. The shape is checked
// once (every needed column present, every row as wide as the header); fields are then
// read as text or numbers without further error plumbing.

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

// Parses a whole field as a number; nullopt for NULL, empty or trailing garbage.
std::optional<double> parseNumber(const std::optional<std::string>& field);

}  // namespace dbpulse::collectors
