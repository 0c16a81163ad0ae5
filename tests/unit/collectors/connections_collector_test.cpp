#include "collectors/postgres/connections_collector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "collectors/clients/postgres/pg_session.h"

namespace dbpulse::collectors {
namespace {

using Row = std::vector<std::optional<std::string>>;

const std::vector<std::string> kColumns = {"kind", "datname", "state", "app", "v1", "v2"};

Row row(const char* kind, const char* datname, const char* state, const char* app, const char* v1,
        const char* v2) {
  return Row{kind, datname, state, app, v1, v2};
}

Row stateRow(const char* db, const char* state, const char* count, const char* age) {
  return row("state", db, state, "", count, age);
}
Row appRow(const std::string& db, const std::string& app, int count) {
  return Row{"app", db, "", app, std::to_string(count), "0"};
}
Row clientsRow(const char* clients, const char* longest) {
  return row("clients", "", "", "", clients, longest);
}
Row waitingRow(const char* waiting, const char* blocked) {
  return row("waiting", "", "", "", waiting, blocked);
}
Row settingsRow(const char* max_connections, const char* reserved) {
  return row("settings", "", "", "", max_connections, reserved);
}

// A typical result: one database, 16 clients, 100 slots with 3 reserved.
PgRows typicalRows() {
  PgRows r;
  r.columns = kColumns;
  r.rows = {
      stateRow("chat", "active", "3", "1.5"),
      stateRow("chat", "idle", "10", "0"),
      stateRow("chat", "idle in transaction", "2", "30"),
      stateRow("chat", "idle in transaction (aborted)", "1", "45"),
      stateRow("chat", "fastpath function call", "0", "0"),
      stateRow("chat", "disabled", "0", "0"),
      appRow("chat", "chat-server", 12),
      appRow("chat", "psql", 1),
      appRow("chat", "", 3),
      clientsRow("16", "45"),
      waitingRow("2", "1"),
      settingsRow("100", "3"),
  };
  return r;
}

std::optional<double> value(const SampleBatch& b, const std::string& name,
                            const Labels& labels = {}) {
  std::optional<double> found;
  for (const auto& s : b.samples()) {
    if (s.name == name && s.labels == labels) {
      EXPECT_FALSE(found.has_value()) << "duplicate series " << name;
      found = s.value;
    }
  }
  return found;
}

std::vector<const Sample*> samplesOf(const SampleBatch& b, const std::string& name) {
  std::vector<const Sample*> out;
  for (const auto& s : b.samples()) {
    if (s.name == name) out.push_back(&s);
  }
  return out;
}

TEST(ConnectionsCollectorTest, ParsesTypicalResult) {
  SampleBatch out;
  const Status s = parseConnectionRows(typicalRows(), out);
  ASSERT_TRUE(s.ok()) << s.toString();

  EXPECT_EQ(value(out, "pg_stat_activity_count", {{"datname", "chat"}, {"state", "active"}}), 3);
  EXPECT_EQ(value(out, "pg_stat_activity_count", {{"datname", "chat"}, {"state", "idle"}}), 10);
  EXPECT_EQ(samplesOf(out, "pg_stat_activity_count").size(), 6u);
  EXPECT_EQ(value(out, "pg_stat_activity_max_tx_duration",
                  {{"datname", "chat"}, {"state", "idle in transaction"}}),
            30);
  EXPECT_EQ(value(out, "pg_settings_max_connections"), 100);
  EXPECT_EQ(value(out, "pg_settings_superuser_reserved_connections"), 3);
  EXPECT_EQ(value(out, "dbpulse_pg_client_connections"), 16);
  EXPECT_EQ(value(out, "dbpulse_pg_longest_transaction_seconds"), 45);
  EXPECT_EQ(value(out, "dbpulse_pg_waiting_sessions"), 2);
  EXPECT_EQ(value(out, "dbpulse_pg_blocked_sessions"), 1);
  EXPECT_EQ(value(out, "dbpulse_pg_connections_by_application",
                  {{"datname", "chat"}, {"application_name", "chat-server"}}),
            12);
  EXPECT_EQ(value(out, "dbpulse_pg_connections_by_application",
                  {{"datname", "chat"}, {"application_name", ""}}),
            3);
  // Every family it writes is described (type and help), as the store and /metrics need.
  for (const auto& smp : out.samples()) {
    EXPECT_EQ(out.families().count(smp.name), 1u) << smp.name;
  }
  EXPECT_EQ(out.families().at("dbpulse_pg_connections_utilization_ratio").type, MetricType::kGauge);
}

TEST(ConnectionsCollectorTest, UtilizationIsClientsOverUsableSlots) {
  const struct {
    const char* clients;
    const char* max_connections;
    const char* reserved;
    double want;
  } cases[] = {
      {"16", "100", "3", 16.0 / 97.0}, {"0", "100", "3", 0.0},  {"97", "100", "3", 1.0},
      {"50", "100", "0", 0.5},         {"10", "20", "10", 1.0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.clients) + "/(" + c.max_connections + "-" + c.reserved + ")");
    PgRows rows = typicalRows();
    for (auto& r : rows.rows) {
      if (r[0] == "clients") r[4] = c.clients;
      if (r[0] == "settings") {
        r[4] = c.max_connections;
        r[5] = c.reserved;
      }
    }
    SampleBatch out;
    ASSERT_TRUE(parseConnectionRows(rows, out).ok());
    ASSERT_TRUE(value(out, "dbpulse_pg_connections_utilization_ratio").has_value());
    EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_connections_utilization_ratio"), c.want);
  }
}

TEST(ConnectionsCollectorTest, IdleInTransactionIncludesAborted) {
  PgRows rows;
  rows.columns = kColumns;
  rows.rows = {
      stateRow("a", "idle in transaction", "4", "10"),
      stateRow("a", "idle in transaction (aborted)", "2", "20"),
      stateRow("b", "idle in transaction", "1", "5"),
      stateRow("b", "idle", "50", "0"),
      stateRow("b", "active", "7", "1"),
      clientsRow("64", "20"),
      waitingRow("0", "0"),
      settingsRow("100", "3"),
  };
  SampleBatch out;
  ASSERT_TRUE(parseConnectionRows(rows, out).ok());
  EXPECT_EQ(value(out, "dbpulse_pg_idle_in_transaction_sessions"), 7);
}

TEST(ConnectionsCollectorTest, CapsApplicationSeriesAndSumsTheRestAsOther) {
  PgRows rows = typicalRows();
  rows.rows.erase(std::remove_if(rows.rows.begin(), rows.rows.end(),
                                 [](const Row& r) { return r[0] == "app"; }),
                  rows.rows.end());
  // 25 applications in "chat" with 25..1 connections, 2 in "ops" with 1 each.
  int total = 0;
  for (int i = 25; i >= 1; --i) {
    rows.rows.push_back(appRow("chat", "app-" + std::to_string(i), i));
    total += i;
  }
  rows.rows.push_back(appRow("ops", "cron-a", 1));
  rows.rows.push_back(appRow("ops", "cron-b", 1));
  total += 2;

  SampleBatch out;
  ASSERT_TRUE(parseConnectionRows(rows, out).ok());
  const auto apps = samplesOf(out, "dbpulse_pg_connections_by_application");
  int named = 0;
  double sum = 0;
  std::set<std::string> seen;
  for (const Sample* s : apps) {
    sum += s->value;
    if (s->labels.get("application_name") != "other") ++named;
    std::string key;
    s->labels.appendKey(key);
    EXPECT_TRUE(seen.insert(key).second) << "duplicate series " << key;
  }
  EXPECT_EQ(named, static_cast<int>(kMaxApplicationSeries));
  EXPECT_EQ(sum, total) << "no connection is lost by the cap";
  // The 20 largest are kept by name ...
  EXPECT_EQ(value(out, "dbpulse_pg_connections_by_application",
                  {{"datname", "chat"}, {"application_name", "app-25"}}),
            25);
  EXPECT_EQ(value(out, "dbpulse_pg_connections_by_application",
                  {{"datname", "chat"}, {"application_name", "app-6"}}),
            6);
  EXPECT_FALSE(value(out, "dbpulse_pg_connections_by_application",
                     {{"datname", "chat"}, {"application_name", "app-5"}})
                   .has_value());
  // ... the rest is summed per database.
  EXPECT_EQ(value(out, "dbpulse_pg_connections_by_application",
                  {{"datname", "chat"}, {"application_name", "other"}}),
            5 + 4 + 3 + 2 + 1);
  EXPECT_EQ(value(out, "dbpulse_pg_connections_by_application",
                  {{"datname", "ops"}, {"application_name", "other"}}),
            2);
  EXPECT_EQ(apps.size(), kMaxApplicationSeries + 2);
}

TEST(ConnectionsCollectorTest, TwentyApplicationsNeedNoOther) {
  PgRows rows = typicalRows();
  rows.rows.erase(std::remove_if(rows.rows.begin(), rows.rows.end(),
                                 [](const Row& r) { return r[0] == "app"; }),
                  rows.rows.end());
  for (int i = 1; i <= static_cast<int>(kMaxApplicationSeries); ++i) {
    rows.rows.push_back(appRow("chat", "app-" + std::to_string(i), i));
  }
  SampleBatch out;
  ASSERT_TRUE(parseConnectionRows(rows, out).ok());
  EXPECT_EQ(samplesOf(out, "dbpulse_pg_connections_by_application").size(), kMaxApplicationSeries);
  EXPECT_FALSE(value(out, "dbpulse_pg_connections_by_application",
                     {{"datname", "chat"}, {"application_name", "other"}})
                   .has_value());
}

// application_name is chosen by clients: one literally called "other" must not produce
// two samples with the same labels (the store would keep only one and lose connections).
TEST(ConnectionsCollectorTest, ApplicationNamedOtherIsMergedWithTheOverflow) {
  PgRows rows = typicalRows();
  rows.rows.erase(std::remove_if(rows.rows.begin(), rows.rows.end(),
                                 [](const Row& r) { return r[0] == "app"; }),
                  rows.rows.end());
  rows.rows.push_back(appRow("chat", "other", 100));
  for (int i = 1; i <= static_cast<int>(kMaxApplicationSeries); ++i) {
    rows.rows.push_back(appRow("chat", "app-" + std::to_string(i), i));
  }
  SampleBatch out;
  ASSERT_TRUE(parseConnectionRows(rows, out).ok());
  int other_samples = 0;
  double other_sum = 0;
  for (const Sample* s : samplesOf(out, "dbpulse_pg_connections_by_application")) {
    if (s->labels == Labels{{"datname", "chat"}, {"application_name", "other"}}) {
      ++other_samples;
      other_sum += s->value;
    }
  }
  EXPECT_EQ(other_samples, 1) << "one series per label set";
  EXPECT_EQ(other_sum, 101);
}

TEST(ConnectionsCollectorTest, ColumnsAreFoundByName) {
  PgRows rows = typicalRows();
  // Reverse the column order (and every row with it).
  std::reverse(rows.columns.begin(), rows.columns.end());
  for (auto& r : rows.rows) std::reverse(r.begin(), r.end());
  SampleBatch out;
  ASSERT_TRUE(parseConnectionRows(rows, out).ok());
  EXPECT_EQ(value(out, "dbpulse_pg_client_connections"), 16);
  EXPECT_EQ(value(out, "pg_stat_activity_count", {{"datname", "chat"}, {"state", "idle"}}), 10);
}

struct MalformedCase {
  const char* name;
  std::function<void(PgRows&)> mutate;
};

void setCell(PgRows& rows, const char* kind, size_t column, std::optional<std::string> v) {
  for (auto& r : rows.rows) {
    if (r[0] == kind) {
      r[column] = std::move(v);
      return;
    }
  }
  FAIL() << "no row of kind " << kind;
}

void dropKind(PgRows& rows, const char* kind) {
  rows.rows.erase(std::remove_if(rows.rows.begin(), rows.rows.end(),
                                 [&](const Row& r) { return r[0] == kind; }),
                  rows.rows.end());
}

void dropColumn(PgRows& rows, const std::string& column) {
  const int c = rows.column(column);
  ASSERT_GE(c, 0);
  rows.columns.erase(rows.columns.begin() + c);
  for (auto& r : rows.rows) r.erase(r.begin() + c);
}

TEST(ConnectionsCollectorTest, MalformedResultIsAnErrorNotACrash) {
  const MalformedCase cases[] = {
      {"non-numeric count", [](PgRows& r) { setCell(r, "state", 4, "three"); }},
      {"non-numeric age", [](PgRows& r) { setCell(r, "state", 5, "1.5s"); }},
      {"number with trailing text", [](PgRows& r) { setCell(r, "settings", 4, "100 "); }},
      {"empty number", [](PgRows& r) { setCell(r, "clients", 4, ""); }},
      {"NULL value", [](PgRows& r) { setCell(r, "waiting", 4, std::nullopt); }},
      {"NULL kind", [](PgRows& r) { setCell(r, "app", 0, std::nullopt); }},
      {"unknown kind", [](PgRows& r) { r.rows.push_back(row("bogus", "", "", "", "1", "1")); }},
      {"missing column v2", [](PgRows& r) { dropColumn(r, "v2"); }},
      {"missing column kind", [](PgRows& r) { dropColumn(r, "kind"); }},
      {"renamed column", [](PgRows& r) { r.columns[3] = "application_name"; }},
      {"no columns at all", [](PgRows& r) { r = PgRows{}; }},
      {"no rows", [](PgRows& r) { r.rows.clear(); }},
      {"missing clients row", [](PgRows& r) { dropKind(r, "clients"); }},
      {"missing settings row", [](PgRows& r) { dropKind(r, "settings"); }},
      {"missing waiting row", [](PgRows& r) { dropKind(r, "waiting"); }},
      {"zero max_connections", [](PgRows& r) { setCell(r, "settings", 4, "0"); }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    PgRows rows = typicalRows();
    c.mutate(rows);
    SampleBatch out;
    const Status s = parseConnectionRows(rows, out);
    EXPECT_FALSE(s.ok()) << "accepted a malformed result";
    if (!s.ok()) {
      EXPECT_NE(s.message().find("connections"), std::string::npos) << s.message();
    }
  }
}

// A row with fewer cells than there are columns (a driver bug, or a hand-built PgRows)
// must be rejected, not read past its end. Run in a child process so an out-of-bounds
// read that crashes is reported as a failure of this test only.
TEST(ConnectionsCollectorDeathTest, ShortRowIsAnErrorNotAnOutOfBoundsRead) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  PgRows rows = typicalRows();
  rows.rows.push_back(Row{"clients", ""});  // 2 cells for 6 columns
  EXPECT_EXIT(
      {
        SampleBatch out;
        const Status s = parseConnectionRows(rows, out);
        std::exit(s.ok() ? 1 : 0);
      },
      ::testing::ExitedWithCode(0), "");
}

// ---- redactDsn ---------------------------------------------------------------------

TEST(RedactDsnTest, HidesPasswords) {
  const struct {
    const char* dsn;
    const char* want;
  } cases[] = {
      {"host=db password=secret user=u", "host=db password=*** user=u"},
      {"password=secret", "password=***"},
      {"host=db password='se cret' user=u", "host=db password=*** user=u"},
      {"host=db password='it\\'s secret' user=u", "host=db password=*** user=u"},
      {"host=db password = secret user=u", "host=db password = *** user=u"},
      {"postgresql://u:secret@db:5432/chat", "postgresql://u:***@db:5432/chat"},
      {"postgres://u:secret@db/chat?sslmode=require", "postgres://u:***@db/chat?sslmode=require"},
      {"postgresql://db/chat?password=secret", "postgresql://db/chat?password=***"},
      {"postgresql://db/chat?user=u&password=secret", "postgresql://db/chat?user=u&password=***"},
      {"postgresql://db/chat?password=secret&sslmode=require",
       "postgresql://db/chat?password=***&sslmode=require"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.dsn);
    const std::string out = redactDsn(c.dsn);
    EXPECT_EQ(out.find("secret"), std::string::npos) << "password leaked: " << out;
    EXPECT_EQ(out, c.want);
  }
}

TEST(RedactDsnTest, LeavesDsnWithoutPasswordUnchanged) {
  const char* const cases[] = {
      "host=127.0.0.1 port=5432 dbname=chat user=dbpulse",
      "postgresql://u@db:5432/chat",
      "postgresql://db:5432/chat?sslmode=require",
      "host=db passfile=/run/pgpass user=u",
      "",
  };
  for (const char* dsn : cases) {
    SCOPED_TRACE(dsn);
    EXPECT_EQ(redactDsn(dsn), dsn);
  }
}

}  // namespace
}  // namespace dbpulse::collectors
