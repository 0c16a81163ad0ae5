#pragma once
// `replication`: how far behind are the replicas, and how much WAL do slots hold back?
//
// One query per run: pg_is_in_recovery(), pg_stat_replication (one row per connected
// replica) and pg_replication_slots; cost is linear in replicas + slots, which
// max_wal_senders and max_replication_slots bound (and so bound the series).
//
// What it reports depends on the server's role:
// - primary (or a standby that feeds cascading replicas), per replica labelled
//   {application_name, client_addr}:
//     dbpulse_pg_replication_{write,flush,replay}_lag_seconds   pg_stat_replication's
//         *_lag (0 once the replica has caught up and the server reset them to NULL)
//     dbpulse_pg_replication_{write,flush,replay}_lag_bytes     WAL between this server's
//         position and the replica's write/flush/replay position
//     dbpulse_pg_replication_replica_streaming                  1 while state = streaming
//   and dbpulse_pg_replication_replicas (how many are connected).
// - per replication slot {slot_name, slot_type}:
//     dbpulse_pg_replication_slot_retained_bytes   WAL kept for the slot (current LSN -
//         restart_lsn): grows while its consumer is away and fills the disk
//     dbpulse_pg_replication_slot_active           1 while a consumer is connected
//     dbpulse_pg_replication_slot_lost             1 when wal_status = 'lost'
//     dbpulse_pg_replication_slot_safe_wal_size_bytes   (only with max_slot_wal_keep_size)
//     dbpulse_pg_replication_slot_inactive_seconds      (PostgreSQL 17+: inactive_since)
// - standby: dbpulse_pg_replication_standby_replay_lag_seconds (now() -
//   pg_last_xact_replay_timestamp(), 0 while everything received is replayed, so an
//   idle primary does not look like lag) and
//   dbpulse_pg_replication_standby_receive_replay_lag_bytes (received but not replayed).
// - dbpulse_pg_replication_is_standby (1 on a standby, 0 on a primary with replicas or
//   slots) whenever anything above is reported.
// A standalone server (no recovery, no replicas, no slots) yields no series and no error.
//
// Replica positions are visible only to roles with pg_read_all_stats (part of
// pg_monitor); without it the collector switches itself off with privilege_missing.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collectors/clients/postgres/pg_rows.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/collector.h"

namespace dbpulse::collectors {

// The query for a server version (server_version_num). PostgreSQL 17 added
// pg_replication_slots.inactive_since.
std::string replicationQuery(int server_version_num);

struct ReplicaLag {
  std::string application_name, client_addr, state;
  std::optional<double> write_lag_seconds, flush_lag_seconds, replay_lag_seconds;
  std::optional<double> write_lag_bytes, flush_lag_bytes, replay_lag_bytes;
};

struct SlotRetention {
  std::string slot_name, slot_type, wal_status;
  bool active = false;
  std::optional<double> retained_bytes;  // NULL restart_lsn: the slot reserves nothing yet
  std::optional<double> safe_wal_size_bytes;
  std::optional<double> inactive_seconds;
};

struct ReplicationStatus {
  bool standby = false;
  std::optional<double> standby_replay_lag_seconds;    // standby only
  std::optional<double> standby_receive_replay_bytes;  // standby with a WAL receiver
  std::vector<ReplicaLag> replicas;
  std::vector<SlotRetention> slots;
};

// Rows of replicationQuery() -> ReplicationStatus. Pure. Internal on an unexpected shape;
// FailedPrecondition("privilege_missing: ...") when replica rows are hidden (state NULL).
Result<ReplicationStatus> parseReplicationRows(const PgRows& rows);

// ReplicationStatus -> samples (nothing for a standalone server). Replicas sharing
// application_name and client_addr are merged, keeping the worst lag of each kind.
void exportReplicationSamples(const ReplicationStatus& status, SampleBatch& out);

class ReplicationCollector final : public Collector {
 public:
  explicit ReplicationCollector(SqlSession& session) : session_(session.caller()) {}
  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;

 private:
  const std::string name_ = "replication";
  std::unique_ptr<SqlSession> session_;  // this collector's handle on the group's session
};

}  // namespace dbpulse::collectors
