#include "collectors/clients/postgres/pg_fields.h"

#include <charconv>

#include "collectors/clients/postgres/pg_session.h"

namespace dbpulse::collectors::pgutil {

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

Result<int> serverVersionNum(PgCaller& session) {
  if (int v = session.serverVersion(); v > 0) return v;
  auto rows = session.query("SHOW server_version_num");
  if (!rows.ok()) return rows.status();
  long long v = 0;
  if (rows->rows.empty() || rows->rows.front().empty() || !toInt64(rows->rows.front().front(), v) ||
      v <= 0) {
    return internalError("SHOW server_version_num: unexpected answer");
  }
  return static_cast<int>(v);
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

}  // namespace dbpulse::collectors::pgutil
