#include "collectors/postgres/pg_collect_util.h"

#include <malloc.h>

#include <string>

namespace dbpulse::collectors {

Status collectorQueryError(std::string_view collector, const Status& status, std::string_view fix) {
  if (status.code() != StatusCode::kPermissionDenied) return status;
  return failedPrecondition(
      "privilege_missing",
      "" + std::string(collector) + ": " + status.message() + "; fix: " + std::string(fix));
}

namespace pgutil {

Status mapQueryError(std::string_view collector, const Status& status,
                     std::string_view privilege_hint) {
  if (status.code() != StatusCode::kPermissionDenied) return status;
  return failedPrecondition("privilege_missing", "" + std::string(collector) + ": " +
                                                     status.message() + " (" +
                                                     std::string(privilege_hint) + ")");
}

void releaseFreedMemory() { malloc_trim(0); }

}  // namespace pgutil
}  // namespace dbpulse::collectors
