#include "collectors/clients/postgres/sql_session.h"

#include "collectors/clients/postgres/result_reader.h"

namespace dbpulse::collectors {

Result<int> serverVersionNum(SqlSession& session) {
  if (int v = session.serverVersion(); v > 0) return v;
  auto rows = session.query("SHOW server_version_num");
  if (!rows.ok()) return rows.status();
  long long v = 0;
  if (rows->rows.empty() || rows->rows.front().empty() ||
      !pgutil::toInt64(rows->rows.front().front(), v) || v <= 0) {
    return internalError("SHOW server_version_num: unexpected answer");
  }
  return static_cast<int>(v);
}

}  // namespace dbpulse::collectors
