#pragma once
// What the PostgreSQL health collectors share beyond the client (collectors/clients/postgres):
// turning a failed query into the Status a collector returns (a missing privilege becomes a
// visible switch-off), and giving memory back after a catalogue-sized result.

#include <string_view>

#include "agent/core/status.h"
#include "collectors/clients/postgres/result_reader.h"

namespace dbpulse::collectors {

// What a collector returns for a failed query: PermissionDenied becomes
// FailedPrecondition("privilege_missing: COLLECTOR: <server message>; fix: <fix>") so the
// scheduler switches the collector off visibly and names the missing privilege; every
// other Status is returned unchanged (Unavailable, DeadlineExceeded, ...).
Status collectorQueryError(std::string_view collector, const Status& status,
                           std::string_view fix = "GRANT pg_monitor TO the dbpulse role");

namespace pgutil {

// Maps a failed query's Status for collector `collector`: PermissionDenied becomes
// FailedPrecondition("privilege_missing: ...") naming `privilege_hint` (e.g. "grant
// pg_monitor to the dbpulse role"), so the scheduler switches the collector off visibly
// instead of retrying fast; every other Status is returned unchanged.
Status mapQueryError(std::string_view collector, const Status& status,
                     std::string_view privilege_hint);

// Hands the heap's free pages back to the system (glibc malloc_trim). For the end of a run
// that parsed a catalogue-sized result: freed chunks otherwise stay resident between runs.
// Costs a walk over the heap (about a millisecond); any thread.
void releaseFreedMemory();

}  // namespace pgutil
}  // namespace dbpulse::collectors
