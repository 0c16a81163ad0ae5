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

bool ResultReader::flag(size_t row, int col) const { return pgutil::toBool(field(row, col)); }

std::optional<double> parseNumber(const std::optional<std::string>& field) {
  if (!field || field->empty()) return std::nullopt;
  double v = 0;
  const char* begin = field->data();
  const char* end = begin + field->size();
  auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec != std::errc() || ptr != end || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<std::string> fieldAt(const PgRows& rows, size_t row, size_t col) {
  if (row >= rows.rows.size() || col >= rows.rows[row].size()) return std::nullopt;
  return rows.rows[row][col];
}

namespace pgutil {

bool toDouble(const std::optional<std::string>& field, double& out) {
  if (!field || field->empty()) return false;
  const char* begin = field->data();
  const char* end = begin + field->size();
  auto [ptr, ec] = std::from_chars(begin, end, out);
  return ec == std::errc() && ptr == end;
}

double toDoubleOr(const std::optional<std::string>& field, double fallback) {
  double v = 0;
  return toDouble(field, v) ? v : fallback;
}

bool toInt64(const std::optional<std::string>& field, long long& out) {
  if (!field || field->empty()) return false;
  const char* begin = field->data();
  const char* end = begin + field->size();
  auto [ptr, ec] = std::from_chars(begin, end, out);
  return ec == std::errc() && ptr == end;
}

bool toBool(const std::optional<std::string>& field) {
  return field && (*field == "t" || *field == "true");
}

Status requireColumns(std::string_view collector, const PgRows& rows,
                      std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) {
    if (rows.column(name) < 0) {
      return internalError(std::string(collector) + ": result has no column '" + std::string(name) +
                           "'");
    }
  }
  return okStatus();
}

}  // namespace pgutil

}  // namespace dbpulse::collectors
