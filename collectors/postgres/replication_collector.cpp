#include "collectors/postgres/replication_collector.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "collectors/clients/postgres/sql_session.h"
#include "collectors/postgres/pg_collect_util.h"

namespace dbpulse::collectors {

namespace {

constexpr const char* kCollector = "replication";
constexpr const char* kPrivilegeHint = "grant pg_monitor to the dbpulse role";

// Row kinds: 'server' (one: v1 = in recovery, v2 = standby replay lag in seconds, v3 =
// received-but-not-replayed bytes), 'replica' (pg_stat_replication: v1..v3 = write, flush,
// replay lag in seconds; v4..v6 = the same in bytes), 'slot' (pg_replication_slots: state
// = wal_status, v1 = active, v2 = retained bytes, v3 = safe_wal_size, v4 = seconds
// inactive).
//
// The reference position is this server's: pg_current_wal_lsn() on a primary (it raises
// an error during recovery, hence the CASE), the replayed position on a standby.
// The standby's replay lag is 0 while everything received is replayed: now() -
// pg_last_xact_replay_timestamp() alone grows whenever the primary is idle.
constexpr const char* kReplicationQueryTemplate = R"SQL(
WITH server AS MATERIALIZED (
  SELECT pg_is_in_recovery() AS standby,
         CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
              ELSE pg_current_wal_lsn() END AS lsn
)
SELECT 'server' AS kind, NULL::text AS name, NULL::text AS addr, NULL::text AS state,
       s.standby::int::float8 AS v1,
       CASE WHEN NOT s.standby THEN NULL
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE GREATEST(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))
       END::float8 AS v2,
       CASE WHEN s.standby
            THEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
       END::float8 AS v3,
       NULL::float8 AS v4, NULL::float8 AS v5, NULL::float8 AS v6
  FROM server s
UNION ALL
SELECT 'replica', COALESCE(r.application_name, ''), COALESCE(host(r.client_addr), ''), r.state,
       extract(epoch FROM r.write_lag)::float8, extract(epoch FROM r.flush_lag)::float8,
       extract(epoch FROM r.replay_lag)::float8,
       pg_wal_lsn_diff(s.lsn, r.write_lsn)::float8, pg_wal_lsn_diff(s.lsn, r.flush_lsn)::float8,
       pg_wal_lsn_diff(s.lsn, r.replay_lsn)::float8
  FROM pg_stat_replication r CROSS JOIN server s
UNION ALL
SELECT 'slot', p.slot_name::text, p.slot_type::text, COALESCE(p.wal_status, ''),
       p.active::int::float8, pg_wal_lsn_diff(s.lsn, p.restart_lsn)::float8,
       p.safe_wal_size::float8, @INACTIVE_SECONDS@, NULL, NULL
  FROM pg_replication_slots p CROSS JOIN server s
)SQL";

std::string replaceAll(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// NULL -> nullopt; a malformed number -> false.
bool optionalNumber(const std::optional<std::string>& field, std::optional<double>& out) {
  out.reset();
  if (!field) return true;
  double v = 0;
  if (!pgutil::toDouble(field, v)) return false;
  out = v;
  return true;
}

void maxInto(std::optional<double>& into, const std::optional<double>& v) {
  if (v && (!into || *v > *into)) into = v;
}

}  // namespace

std::string replicationQuery(int server_version_num) {
  const char* inactive = server_version_num >= 170000
                             ? "GREATEST(0, extract(epoch FROM now() - p.inactive_since))::float8"
                             : "NULL::float8";
  return replaceAll(kReplicationQueryTemplate, "@INACTIVE_SECONDS@", inactive);
}

Result<ReplicationStatus> parseReplicationRows(const PgRows& rows) {
  if (Status s = pgutil::requireColumns(
          kCollector, rows, {"kind", "name", "addr", "state", "v1", "v2", "v3", "v4", "v5", "v6"});
      !s.ok()) {
    return s;
  }
  const int c_kind = rows.column("kind"), c_name = rows.column("name"),
            c_addr = rows.column("addr"), c_state = rows.column("state");
  const int c_v[6] = {rows.column("v1"), rows.column("v2"), rows.column("v3"),
                      rows.column("v4"), rows.column("v5"), rows.column("v6")};

  ReplicationStatus status;
  bool seen_server = false;
  size_t hidden = 0;
  for (const auto& row : rows.rows) {
    if (row.size() != rows.columns.size()) {
      return internalError("replication: row with " + std::to_string(row.size()) +
                           " fields, expected " + std::to_string(rows.columns.size()));
    }
    const std::string kind = row[c_kind].value_or("");
    std::optional<double> v[6];
    for (int k = 0; k < 6; ++k) {
      if (!optionalNumber(row[c_v[k]], v[k])) {
        return internalError("replication: non-numeric value in row of kind '" + kind + "'");
      }
    }
    if (kind == "server") {
      seen_server = true;
      if (!v[0]) return internalError("replication: pg_is_in_recovery() missing");
      status.standby = *v[0] != 0;
      status.standby_replay_lag_seconds = v[1];
      status.standby_receive_replay_bytes = v[2];
    } else if (kind == "replica") {
      if (!row[c_state]) {
        // pg_stat_replication shows a walsender's details only to pg_read_all_stats.
        ++hidden;
        continue;
      }
      ReplicaLag r;
      r.application_name = row[c_name].value_or("");
      r.client_addr = row[c_addr].value_or("");
      r.state = *row[c_state];
      r.write_lag_seconds = v[0];
      r.flush_lag_seconds = v[1];
      r.replay_lag_seconds = v[2];
      r.write_lag_bytes = v[3];
      r.flush_lag_bytes = v[4];
      r.replay_lag_bytes = v[5];
      status.replicas.push_back(std::move(r));
    } else if (kind == "slot") {
      SlotRetention s;
      s.slot_name = row[c_name].value_or("");
      s.slot_type = row[c_addr].value_or("");
      s.wal_status = row[c_state].value_or("");
      s.active = v[0].value_or(0) != 0;
      s.retained_bytes = v[1];
      s.safe_wal_size_bytes = v[2];
      s.inactive_seconds = v[3];
      status.slots.push_back(std::move(s));
    } else {
      return internalError("replication: unexpected row kind '" + kind + "'");
    }
  }
  if (!seen_server) return internalError("replication: server row missing from the result");
  if (hidden > 0) {
    return failedPrecondition(
        "privilege_missing",
        "replication: pg_stat_replication hides the positions of " + std::to_string(hidden) +
            " replica(s) from this role; they need pg_read_all_stats (grant pg_monitor to the "
            "dbpulse role)");
  }
  return status;
}

void exportReplicationSamples(const ReplicationStatus& status, SampleBatch& out) {
  const bool standalone = !status.standby && status.replicas.empty() && status.slots.empty();
  if (standalone) return;

  out.gauge("dbpulse_pg_replication_is_standby",
            "1 when this server is a standby (in recovery), 0 on a primary with replicas or "
            "slots.",
            {}, status.standby ? 1 : 0);
  if (status.standby) {
    if (status.standby_replay_lag_seconds) {
      out.gauge("dbpulse_pg_replication_standby_replay_lag_seconds",
                "Standby: seconds since the last replayed transaction committed on the primary "
                "(0 while all received WAL is replayed).",
                {}, *status.standby_replay_lag_seconds);
    }
    if (status.standby_receive_replay_bytes) {
      out.gauge("dbpulse_pg_replication_standby_receive_replay_lag_bytes",
                "Standby: WAL received from the primary but not replayed yet, in bytes.", {},
                *status.standby_receive_replay_bytes);
    }
  }

  if (!status.standby || !status.replicas.empty()) {
    out.gauge("dbpulse_pg_replication_replicas", "Replicas connected to this server (walsenders).",
              {}, static_cast<double>(status.replicas.size()));
  }
  // Replicas with the same name and address would collide as series: keep the worst.
  std::map<std::pair<std::string, std::string>, ReplicaLag> merged;
  for (const ReplicaLag& r : status.replicas) {
    auto [it, fresh] = merged.try_emplace({r.application_name, r.client_addr}, r);
    if (fresh) continue;
    ReplicaLag& m = it->second;
    if (r.state == "streaming") m.state = r.state;  // streaming if any of them is
    maxInto(m.write_lag_seconds, r.write_lag_seconds);
    maxInto(m.flush_lag_seconds, r.flush_lag_seconds);
    maxInto(m.replay_lag_seconds, r.replay_lag_seconds);
    maxInto(m.write_lag_bytes, r.write_lag_bytes);
    maxInto(m.flush_lag_bytes, r.flush_lag_bytes);
    maxInto(m.replay_lag_bytes, r.replay_lag_bytes);
  }
  if (!merged.empty()) {
    out.describe("dbpulse_pg_replication_write_lag_seconds", MetricType::kGauge,
                 "Time until the replica's last write of WAL was confirmed (pg_stat_replication."
                 "write_lag; 0 when caught up).");
    out.describe("dbpulse_pg_replication_flush_lag_seconds", MetricType::kGauge,
                 "Time until the replica's last flush of WAL was confirmed (flush_lag; 0 when "
                 "caught up).");
    out.describe("dbpulse_pg_replication_replay_lag_seconds", MetricType::kGauge,
                 "Time until the replica's last replay of WAL was confirmed (replay_lag; 0 when "
                 "caught up).");
    out.describe("dbpulse_pg_replication_write_lag_bytes", MetricType::kGauge,
                 "WAL bytes between this server's position and the replica's write position.");
    out.describe("dbpulse_pg_replication_flush_lag_bytes", MetricType::kGauge,
                 "WAL bytes between this server's position and the replica's flush position.");
    out.describe("dbpulse_pg_replication_replay_lag_bytes", MetricType::kGauge,
                 "WAL bytes between this server's position and the replica's replay position.");
    out.describe("dbpulse_pg_replication_replica_streaming", MetricType::kGauge,
                 "1 while the replica's walsender is in state streaming (0: catchup, backup, "
                 "startup, stopping).");
  }
  for (const auto& [key, r] : merged) {
    const Labels labels{{"application_name", key.first}, {"client_addr", key.second}};
    // NULL lag: the server has not measured one since the replica caught up.
    out.add("dbpulse_pg_replication_write_lag_seconds", labels, r.write_lag_seconds.value_or(0));
    out.add("dbpulse_pg_replication_flush_lag_seconds", labels, r.flush_lag_seconds.value_or(0));
    out.add("dbpulse_pg_replication_replay_lag_seconds", labels, r.replay_lag_seconds.value_or(0));
    if (r.write_lag_bytes)
      out.add("dbpulse_pg_replication_write_lag_bytes", labels, *r.write_lag_bytes);
    if (r.flush_lag_bytes)
      out.add("dbpulse_pg_replication_flush_lag_bytes", labels, *r.flush_lag_bytes);
    if (r.replay_lag_bytes) {
      out.add("dbpulse_pg_replication_replay_lag_bytes", labels, *r.replay_lag_bytes);
    }
    out.add("dbpulse_pg_replication_replica_streaming", labels, r.state == "streaming" ? 1 : 0);
  }

  if (!status.slots.empty()) {
    out.describe("dbpulse_pg_replication_slot_retained_bytes", MetricType::kGauge,
                 "WAL bytes the slot keeps on disk (current LSN - restart_lsn).");
    out.describe("dbpulse_pg_replication_slot_active", MetricType::kGauge,
                 "1 while a consumer is connected to the slot.");
    out.describe("dbpulse_pg_replication_slot_lost", MetricType::kGauge,
                 "1 when the slot's WAL was removed (wal_status = lost): its consumer cannot "
                 "resume.");
    out.describe("dbpulse_pg_replication_slot_safe_wal_size_bytes", MetricType::kGauge,
                 "WAL bytes that can still be written before the slot is in danger of losing "
                 "WAL (max_slot_wal_keep_size set).");
    out.describe("dbpulse_pg_replication_slot_inactive_seconds", MetricType::kGauge,
                 "Seconds since the slot became inactive (PostgreSQL 17+).");
  }
  for (const SlotRetention& s : status.slots) {
    const Labels labels{{"slot_name", s.slot_name}, {"slot_type", s.slot_type}};
    out.add("dbpulse_pg_replication_slot_retained_bytes", labels, s.retained_bytes.value_or(0));
    out.add("dbpulse_pg_replication_slot_active", labels, s.active ? 1 : 0);
    out.add("dbpulse_pg_replication_slot_lost", labels, s.wal_status == "lost" ? 1 : 0);
    if (s.safe_wal_size_bytes) {
      out.add("dbpulse_pg_replication_slot_safe_wal_size_bytes", labels, *s.safe_wal_size_bytes);
    }
    if (s.inactive_seconds) {
      out.add("dbpulse_pg_replication_slot_inactive_seconds", labels, *s.inactive_seconds);
    }
  }
}

Status ReplicationCollector::collect(const CollectContext& /*ctx*/, SampleBatch& out) {
  auto version = serverVersionNum(*session_);
  if (!version.ok()) return pgutil::mapQueryError(kCollector, version.status(), kPrivilegeHint);
  auto rows = session_->query(replicationQuery(*version));
  if (!rows.ok()) return pgutil::mapQueryError(kCollector, rows.status(), kPrivilegeHint);
  auto status = parseReplicationRows(*rows);
  if (!status.ok()) return status.status();
  exportReplicationSamples(*status, out);
  return okStatus();
}

void ReplicationCollector::cancel() { session_->cancel(); }

}  // namespace dbpulse::collectors
