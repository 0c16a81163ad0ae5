#include "collectors/postgres/replication_collector.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "unit/collectors/sample_batch_util.h"

namespace dbpulse::collectors {
namespace {

using Row = std::vector<std::optional<std::string>>;
using Field = std::optional<std::string>;
const Field kNull = std::nullopt;

const std::vector<std::string> kColumns = {"kind", "name", "addr", "state", "v1",
                                           "v2",   "v3",   "v4",   "v5",    "v6"};

Row serverRow(Field standby, Field lag = kNull, Field bytes = kNull) {
  return Row{"server", kNull, kNull, kNull, standby, lag, bytes, kNull, kNull, kNull};
}
Row replicaRow(const char* app, const char* addr, Field state, Field replay_lag_s,
               Field replay_lag_bytes) {
  return Row{"replica", app,          addr, state, "0.01",
             "0.02",    replay_lag_s, "10", "20",  replay_lag_bytes};
}
Row slotRow(const char* name, const char* type, const char* wal_status, const char* active,
            Field retained, Field safe = kNull, Field inactive = kNull) {
  return Row{"slot", name, type, wal_status, active, retained, safe, inactive, kNull, kNull};
}

PgRows rowsOf(std::vector<Row> rows) {
  PgRows r;
  r.columns = kColumns;
  r.rows = std::move(rows);
  return r;
}

using batchtest::value;

Result<SampleBatch> run(std::vector<Row> rows) {
  auto status = parseReplicationRows(rowsOf(std::move(rows)));
  if (!status.ok()) return status.status();
  SampleBatch out;
  exportReplicationSamples(*status, out);
  return out;
}

TEST(ReplicationCollectorTest, StandaloneServerReportsNothing) {
  auto out = run({serverRow("0")});
  ASSERT_TRUE(out.ok()) << out.status().toString();
  EXPECT_TRUE(out->empty());
}

TEST(ReplicationCollectorTest, PrimaryReportsLagPerReplicaAndSlotRetention) {
  auto out = run({serverRow("0"), replicaRow("standby1", "10.0.0.5", "streaming", "1.5", "4096"),
                  replicaRow("standby2", "10.0.0.6", "catchup", kNull, "0"),
                  slotRow("standby1", "physical", "reserved", "1", "8192", "1048576"),
                  slotRow("etl", "logical", "lost", "0", kNull)});
  ASSERT_TRUE(out.ok()) << out.status().toString();
  const Labels s1{{"application_name", "standby1"}, {"client_addr", "10.0.0.5"}};
  const Labels s2{{"application_name", "standby2"}, {"client_addr", "10.0.0.6"}};
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_is_standby"), 0);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_replicas"), 2);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_replay_lag_seconds", s1), 1.5);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_write_lag_seconds", s1), 0.01);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_flush_lag_seconds", s1), 0.02);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_replay_lag_bytes", s1), 4096);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_flush_lag_bytes", s1), 20);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_replica_streaming", s1), 1);
  // A NULL lag means caught up and idle: 0, not a missing series.
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_replay_lag_seconds", s2), 0);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_replica_streaming", s2), 0);

  const Labels phys{{"slot_name", "standby1"}, {"slot_type", "physical"}};
  const Labels logical{{"slot_name", "etl"}, {"slot_type", "logical"}};
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_slot_retained_bytes", phys), 8192);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_slot_active", phys), 1);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_slot_safe_wal_size_bytes", phys), 1048576);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_slot_lost", logical), 1);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_slot_retained_bytes", logical), 0);
  EXPECT_FALSE(value(*out, "dbpulse_pg_replication_slot_safe_wal_size_bytes", logical));
  EXPECT_FALSE(value(*out, "dbpulse_pg_replication_slot_inactive_seconds", logical));
  EXPECT_FALSE(value(*out, "dbpulse_pg_replication_standby_replay_lag_seconds"));
  for (const auto& s : out->samples()) {
    EXPECT_EQ(out->families().count(s.name), 1u) << s.name;
    EXPECT_EQ(out->families().at(s.name).type, MetricType::kGauge) << s.name;
  }
}

TEST(ReplicationCollectorTest, PrimaryWithOnlyASlotStillReports) {
  auto out =
      run({serverRow("0"), slotRow("spare", "physical", "reserved", "0", "100", kNull, "3600")});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_replicas"), 0);
  const Labels spare{{"slot_name", "spare"}, {"slot_type", "physical"}};
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_slot_retained_bytes", spare), 100);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_slot_inactive_seconds", spare), 3600);
}

TEST(ReplicationCollectorTest, StandbyReportsReplayLag) {
  auto out = run({serverRow("1", "2.5", "65536")});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_is_standby"), 1);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_standby_replay_lag_seconds"), 2.5);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_standby_receive_replay_lag_bytes"), 65536);
  EXPECT_FALSE(value(*out, "dbpulse_pg_replication_replicas"));  // no cascading replicas
  // Archive recovery: no WAL receiver, no replayed transaction yet.
  auto bare = run({serverRow("1")});
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(value(*bare, "dbpulse_pg_replication_is_standby"), 1);
  EXPECT_FALSE(value(*bare, "dbpulse_pg_replication_standby_replay_lag_seconds"));
}

TEST(ReplicationCollectorTest, ReplicasSharingLabelsKeepTheWorstLag) {
  auto out = run({serverRow("0"), replicaRow("walreceiver", "", "streaming", "0.5", "100"),
                  replicaRow("walreceiver", "", "catchup", "9", "50")});
  ASSERT_TRUE(out.ok());
  const Labels same{{"application_name", "walreceiver"}, {"client_addr", ""}};
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_replay_lag_seconds", same), 9);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_replay_lag_bytes", same), 100);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_replica_streaming", same), 1);
  EXPECT_EQ(value(*out, "dbpulse_pg_replication_replicas"), 2);
}

TEST(ReplicationCollectorTest, HiddenReplicaDetailsNameTheMissingPrivilege) {
  auto status = parseReplicationRows(
      rowsOf({serverRow("0"), replicaRow("standby1", "", kNull, kNull, kNull)}));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.status().message().rfind("privilege_missing:", 0), 0u)
      << status.status().message();
  EXPECT_NE(status.status().message().find("pg_read_all_stats"), std::string::npos);
}

TEST(ReplicationCollectorTest, RejectsMalformedResults) {
  const struct {
    const char* what;
    PgRows rows;
  } cases[] = {
      {"no server row", rowsOf({})},
      {"missing column", PgRows{{"kind", "name"}, {}}},
      {"unknown kind", rowsOf({serverRow("0"), Row(kColumns.size(), std::string("x"))})},
      {"non-numeric", rowsOf({serverRow("no")})},
      {"null recovery flag", rowsOf({serverRow(kNull)})},
      {"short row", rowsOf({Row{"server"}})},
  };
  for (const auto& c : cases) {
    auto status = parseReplicationRows(c.rows);
    EXPECT_FALSE(status.ok()) << c.what;
    if (!status.ok()) {
      EXPECT_EQ(status.status().code(), StatusCode::kInternal) << c.what;
    }
  }
}

TEST(ReplicationCollectorTest, QueryReadsInactiveSinceFromPostgres17) {
  for (int version : {130012, 140005, 150004, 160002, 170000, 170002}) {
    const std::string sql = replicationQuery(version);
    EXPECT_EQ(sql.find("inactive_since") != std::string::npos, version >= 170000) << version;
    EXPECT_EQ(sql.find('@'), std::string::npos) << version;
    EXPECT_NE(sql.find("pg_stat_replication"), std::string::npos);
  }
}

}  // namespace
}  // namespace dbpulse::collectors
