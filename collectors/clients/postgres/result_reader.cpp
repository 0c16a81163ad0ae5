#include "collectors/clients/postgres/result_reader.h"

#include <charconv>
#include <cmath>

namespace dbpulse::collectors {

Result<ResultReader> ResultReader::open(std::string_view collector, const PgRows& rows,
                                        const std::vector<std::string_view>& columns) {
  std::vector<std::pair<std::string_view, int>> index;
  index.reserve(columns.size());
  for (std::string_view name : columns) {
    const int c = rows.column(name);
    if (c < 0) {
      return internalError(std::string(collector) + ": result has no column '" + std::string(name) +
                           "'");
    }
    index.emplace_back(name, c);
  }
  for (const auto& row : rows.rows) {
    if (row.size() != rows.columns.size()) {
      return internalError(std::string(collector) + ": row with " + std::to_string(row.size()) +
                           " fields, expected " + std::to_string(rows.columns.size()));
    }
  }
  return ResultReader(rows, std::move(index));
}

int ResultReader::col(std::string_view name) const {
  for (const auto& [n, c] : index_) {
    if (n == name) return c;
  }
  return -1;
}

const std::optional<std::string>& ResultReader::field(size_t row, int col) const {
  static const std::optional<std::string> kNull;
  if (col < 0 || row >= rows_->rows.size()) return kNull;
  return rows_->rows[row][static_cast<size_t>(col)];
}

std::optional<double> ResultReader::number(size_t row, int col) const {
  return parseNumber(field(row, col));
}

bool ResultReader::flag(size_t row, int col) const {
  const auto& f = field(row, col);
  return f && (*f == "t" || *f == "true");
}

std::optional<double> parseNumber(const std::optional<std::string>& field) {
  if (!field || field->empty()) return std::nullopt;
  double v = 0;
  const char* begin = field->data();
  const char* end = begin + field->size();
  auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec != std::errc() || ptr != end || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace dbpulse::collectors
