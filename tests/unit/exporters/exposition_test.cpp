#include "exporters/prometheus/exposition.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "agent/core/sample_store.h"
#include "test_util/gunzip.h"
#include "tests/fakes/fake_clock.h"

namespace dbpulse::exporters {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

using fakes::FakeClock;

// ---- a tiny parser for the Prometheus text format (just enough to check our output) ----

struct ParsedSample {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped values
  double value = 0;
  std::optional<int64_t> timestamp_ms;  // the optional third field
};

struct ParsedExposition {
  std::map<std::string, std::string> help;  // family -> help
  std::map<std::string, std::string> type;  // family -> type
  std::vector<ParsedSample> samples;
  std::vector<std::string> errors;  // "line N: why"
};

bool isNameStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool isNameChar(char c) { return isNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

bool validMetricName(const std::string& s) {
  if (s.empty() || !isNameStart(s[0])) return false;
  for (char c : s) {
    if (!isNameChar(c)) return false;
  }
  return true;
}

bool validLabelName(const std::string& s) {
  return validMetricName(s) && s.find(':') == std::string::npos;
}

ParsedExposition parseExposition(const std::string& text) {
  ParsedExposition out;
  if (!text.empty() && text.back() != '\n') out.errors.push_back("text does not end in a newline");
  std::istringstream in(text);
  std::string line;
  int n = 0;
  std::string current_family;  // the family of the last TYPE line
  std::set<std::string> finished_families;
  auto fail = [&](const std::string& why) {
    out.errors.push_back("line " + std::to_string(n) + ": " + why + ": " + line);
  };
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) {
      fail("empty line");
      continue;
    }
    if (line[0] == '#') {
      std::istringstream ls(line);
      std::string hash, keyword, name;
      ls >> hash >> keyword >> name;
      if (hash != "#" || (keyword != "HELP" && keyword != "TYPE") || !validMetricName(name)) {
        fail("malformed comment");
        continue;
      }
      std::string rest;
      std::getline(ls, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      if (keyword == "HELP") {
        if (out.help.count(name) != 0) fail("second HELP for " + name);
        out.help[name] = rest;
      } else {
        static const std::set<std::string> kTypes = {"counter", "gauge", "untyped", "histogram",
                                                     "summary"};
        if (kTypes.count(rest) == 0) fail("unknown type '" + rest + "'");
        if (out.type.count(name) != 0) fail("second TYPE for " + name);
        out.type[name] = rest;
        if (!current_family.empty()) finished_families.insert(current_family);
        current_family = name;
      }
      continue;
    }
    ParsedSample s;
    size_t i = 0;
    while (i < line.size() && isNameChar(line[i])) ++i;
    s.name = line.substr(0, i);
    if (!validMetricName(s.name)) {
      fail("bad metric name");
      continue;
    }
    bool ok = true;
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (ok && i < line.size() && line[i] != '}') {
        size_t start = i;
        while (i < line.size() && isNameChar(line[i])) ++i;
        std::string lname = line.substr(start, i - start);
        if (!validLabelName(lname) || i + 1 >= line.size() || line[i] != '=' ||
            line[i + 1] != '"') {
          ok = false;
          break;
        }
        i += 2;
        std::string value;
        bool closed = false;
        while (i < line.size()) {
          char c = line[i++];
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\') {
            if (i >= line.size()) break;
            char e = line[i++];
            if (e == 'n')
              value += '\n';
            else if (e == '\\')
              value += '\\';
            else if (e == '"')
              value += '"';
            else {
              ok = false;  // the format allows only these three escapes
              break;
            }
          } else {
            value += c;
          }
        }
        if (!closed) ok = false;
        if (!ok) break;
        if (s.labels.count(lname) != 0) ok = false;
        s.labels[lname] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (ok && (i >= line.size() || line[i] != '}')) ok = false;
      ++i;
    }
    if (!ok || i >= line.size() || line[i] != ' ') {
      fail("malformed labels");
      continue;
    }
    std::string value_text = line.substr(i + 1);
    if (const size_t sp = value_text.find(' '); sp != std::string::npos) {
      const std::string ts = value_text.substr(sp + 1);
      value_text.resize(sp);
      if (ts.empty() || ts.find_first_not_of("0123456789") != std::string::npos) {
        fail("timestamp is not an integer of milliseconds");
        continue;
      }
      s.timestamp_ms = std::stoll(ts);
    }
    char* end = nullptr;
    s.value = std::strtod(value_text.c_str(), &end);
    if (value_text.empty() || end != value_text.c_str() + value_text.size()) {
      fail("value is not a float");
      continue;
    }
    if (s.name != current_family) fail("sample outside its family's TYPE block");
    if (finished_families.count(s.name) != 0) fail("family split in two blocks");
    out.samples.push_back(std::move(s));
  }
  return out;
}

const ParsedSample* findSample(const ParsedExposition& p, const std::string& name,
                               const std::map<std::string, std::string>& labels) {
  for (const auto& s : p.samples) {
    if (s.name == name && s.labels == labels) return &s;
  }
  return nullptr;
}

SnapshotSeries series(Labels labels, double value) {
  return SnapshotSeries{std::move(labels), value, 0};
}

// The snapshot behind the golden file; built by hand, families sorted like the store does.
Snapshot goldenSnapshot() {
  Snapshot snap;
  snap.version = 7;
  snap.families.push_back(SnapshotFamily{
      "dbpulse_collector_errors_total",
      MetricType::kCounter,
      "Failed runs of the collector.",
      {series({{"collector", "connections"}}, 3), series({{"collector", "process"}}, 0)}});
  snap.families.push_back(SnapshotFamily{"dbpulse_pg_connections_utilization_ratio",
                                         MetricType::kGauge,
                                         "Client connections / usable slots.",
                                         {series({}, 0.25)}});
  snap.families.push_back(SnapshotFamily{"no_help", MetricType::kUntyped, "", {series({}, -2)}});
  snap.families.push_back(
      SnapshotFamily{"pg_stat_activity_count",
                     MetricType::kUntyped,
                     "Client connections by database and state.",
                     {series({{"datname", "chat"}, {"state", "idle in transaction"}}, 2)}});
  snap.families.push_back(SnapshotFamily{
      "weird_labels",
      MetricType::kGauge,
      "Label values that need escaping.",
      {series({{"app", "say \"hi\""}, {"path", "C:\\dir"}, {"text", "line1\nline2"}}, 1.5)}});
  return snap;
}

// From the source tree, not __FILE__ (ccache may compile with relative paths).
fs::path testdataDir() { return fs::path(DBPULSE_SOURCE_DIR) / "tests/unit/exporters/testdata"; }

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Regenerate with DBPULSE_UPDATE_GOLDEN=1 and review the diff before committing it.
TEST(ExpositionTest, RenderTextMatchesGoldenFile) {
  const std::string text = renderText(goldenSnapshot());
  const fs::path golden = testdataDir() / "exposition.golden.prom";
  if (const char* update = std::getenv("DBPULSE_UPDATE_GOLDEN");
      update && std::string(update) == "1") {
    std::ofstream(golden, std::ios::binary | std::ios::trunc) << text;
    GTEST_SKIP() << "rewrote " << golden;
  }
  ASSERT_TRUE(fs::exists(golden)) << golden;
  EXPECT_EQ(text, readFile(golden));
}

TEST(ExpositionTest, RenderTextIsValidPrometheusText) {
  const std::string text = renderText(goldenSnapshot());
  const ParsedExposition p = parseExposition(text);
  for (const auto& e : p.errors) ADD_FAILURE() << e;

  EXPECT_EQ(p.type.at("dbpulse_collector_errors_total"), "counter");
  EXPECT_EQ(p.type.at("dbpulse_pg_connections_utilization_ratio"), "gauge");
  EXPECT_EQ(p.type.at("pg_stat_activity_count"), "untyped");
  EXPECT_EQ(p.type.at("no_help"), "untyped");
  EXPECT_EQ(p.help.at("pg_stat_activity_count"), "Client connections by database and state.");
  EXPECT_EQ(p.samples.size(), 6u);

  // Escaped label values read back to the original bytes.
  const ParsedSample* weird = findSample(
      p, "weird_labels", {{"app", "say \"hi\""}, {"path", "C:\\dir"}, {"text", "line1\nline2"}});
  ASSERT_NE(weird, nullptr) << text;
  EXPECT_EQ(weird->value, 1.5);

  const ParsedSample* errors =
      findSample(p, "dbpulse_collector_errors_total", {{"collector", "connections"}});
  ASSERT_NE(errors, nullptr);
  EXPECT_EQ(errors->value, 3);
  const ParsedSample* ratio = findSample(p, "dbpulse_pg_connections_utilization_ratio", {});
  ASSERT_NE(ratio, nullptr);
  EXPECT_EQ(ratio->value, 0.25);
}

TEST(ExpositionTest, SpecialAndExtremeValuesStayParseable) {
  Snapshot snap;
  snap.families.push_back(SnapshotFamily{
      "g",
      MetricType::kGauge,
      "Values.",
      {series({{"v", "nan"}}, std::numeric_limits<double>::quiet_NaN()),
       series({{"v", "pinf"}}, std::numeric_limits<double>::infinity()),
       series({{"v", "ninf"}}, -std::numeric_limits<double>::infinity()),
       series({{"v", "tiny"}}, 1e-300), series({{"v", "huge"}}, 1e300),
       // 2^53: the largest counter value where every integer is exact must stay exact.
       series({{"v", "2^53"}}, 9007199254740992.0), series({{"v", "fraction"}}, 123456789.125)}});
  const std::string text = renderText(snap);
  const ParsedExposition p = parseExposition(text);
  for (const auto& e : p.errors) ADD_FAILURE() << e;
  ASSERT_EQ(p.samples.size(), 7u) << text;
  EXPECT_TRUE(std::isnan(findSample(p, "g", {{"v", "nan"}})->value));
  EXPECT_EQ(findSample(p, "g", {{"v", "pinf"}})->value, std::numeric_limits<double>::infinity());
  EXPECT_EQ(findSample(p, "g", {{"v", "ninf"}})->value, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(findSample(p, "g", {{"v", "tiny"}})->value, 1e-300);
  EXPECT_EQ(findSample(p, "g", {{"v", "huge"}})->value, 1e300);
  // prometheus-cpp prints 16 significant digits (not the shortest exact form), so only
  // values that fit in 16 digits are checked for exactness.
  EXPECT_EQ(findSample(p, "g", {{"v", "2^53"}})->value, 9007199254740992.0);
  EXPECT_EQ(findSample(p, "g", {{"v", "fraction"}})->value, 123456789.125);
}

TEST(ExpositionTest, EmptySnapshotRendersNothing) { EXPECT_EQ(renderText(Snapshot{}), ""); }

TEST(ExpositionTest, RenderOfStoreSnapshotContainsWrittenSeries) {
  FakeClock clock;
  SampleStore store(clock);
  SampleBatch b;
  b.gauge("pg_up", "1 when PostgreSQL answers.", {}, 1);
  b.counter("dbpulse_x_total", "Things.", {{"kind", "a"}}, 12);
  store.write("c", b, seconds(60));

  Exposition exposition(store);
  const auto text = exposition.render();
  ASSERT_NE(text, nullptr);
  const ParsedExposition p = parseExposition(*text);
  for (const auto& e : p.errors) ADD_FAILURE() << e;
  EXPECT_EQ(p.type.at("pg_up"), "gauge");
  EXPECT_EQ(p.type.at("dbpulse_x_total"), "counter");
  ASSERT_NE(findSample(p, "pg_up", {}), nullptr);
  EXPECT_EQ(findSample(p, "dbpulse_x_total", {{"kind", "a"}})->value, 12);
}

TEST(ExpositionTest, RenderIsCachedUntilTheStoreChanges) {
  FakeClock clock;
  SampleStore store(clock);
  SampleBatch b;
  b.gauge("g", "h", {}, 1);
  store.write("c", b, seconds(10));

  Exposition exposition(store);
  const auto first = exposition.render();
  const auto second = exposition.render();
  EXPECT_EQ(first.get(), second.get()) << "no write: the cached text is returned";

  SampleBatch b2;
  b2.gauge("g", "h", {}, 2);
  store.write("c", b2, seconds(10));
  const auto third = exposition.render();
  EXPECT_NE(third.get(), first.get());
  EXPECT_NE(third->find("g 2\n"), std::string::npos) << *third;
  EXPECT_NE(first->find("g 1\n"), std::string::npos) << "the old text is not mutated";
  EXPECT_EQ(exposition.render().get(), third.get());

  clock.advance(seconds(10));  // the series expires: a new, empty text
  const auto expired = exposition.render();
  EXPECT_NE(expired.get(), third.get());
  EXPECT_EQ(*expired, "");
}

}  // namespace
}  // namespace dbpulse::exporters

namespace dbpulse::exporters {
namespace {

TEST(ExpositionTest, GzipIsTheCachedTextEncodedOncePerSnapshot) {
  FakeClock clock;
  SampleStore store(clock);
  SampleBatch b;
  for (int i = 0; i < 200; ++i) {
    b.gauge("pg_table_rows", "Rows.", {{"relname", "t" + std::to_string(i)}}, i);
  }
  store.write("c", b, seconds(60));

  Exposition exposition(store);
  const auto gz = exposition.renderGzip();
  ASSERT_NE(gz, nullptr);
  const std::optional<std::string> decoded = testing::gunzip(*gz);
  ASSERT_TRUE(decoded.has_value()) << "not one complete gzip member";
  EXPECT_EQ(*decoded, *exposition.render());
  EXPECT_LT(gz->size() * 4, decoded->size()) << "repetitive exposition text compresses";
  EXPECT_EQ(exposition.renderGzip().get(), gz.get()) << "no write: compressed once";

  SampleBatch b2;
  b2.gauge("g", "h", {}, 2);
  store.write("c", b2, seconds(60));
  const auto next = exposition.renderGzip();
  EXPECT_NE(next.get(), gz.get());
  EXPECT_EQ(testing::gunzip(*next), *exposition.render());
}

TEST(ExpositionTest, GzipOfAnEmptyTextIsStillAValidStream) {
  const std::optional<std::string> decoded = testing::gunzip(gzipCompress(""));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, "");
}

}  // namespace
}  // namespace dbpulse::exporters

namespace dbpulse::exporters {
namespace {

// irate()/rate() at a scrape interval shorter than the collector's: a counter that its
// collector renews every run carries the time it was read, as long as the collector keeps
// renewing it; a gauge never (Prometheus keeps staleness handling for it); nor does an
// event-driven counter (one sample for hours would leave increase() without data) or one
// from a collector too slow for Prometheus's 5-minute lookback.
TEST(ExpositionTest, RenewedCountersCarryTheirCollectionTimeOthersNever) {
  FakeClock clock;
  SampleStore store(clock);
  SampleBatch slow;
  slow.counter("dbpulse_slow_total", "Every 5 minutes (staleness 2 x 5 min + 10 s).", {}, 5);
  store.write("indexes", slow, seconds(610));
  SampleBatch events;
  events.counter("dbpulse_events_total", "Written when something happens.", {}, 2);
  store.write("maintenance", events, std::chrono::hours(24 * 365));

  clock.advance(seconds(100));
  SampleBatch fast;
  fast.counter("dbpulse_fast_total", "Every 15 s (staleness 2 x 15 s + 5 s).", {}, 7);
  fast.gauge("dbpulse_fast_gauge", "A gauge of the same run.", {}, 1);
  store.write("connections", fast, seconds(35));
  SampleBatch self;
  self.counter("dbpulse_runs_total", "Kept for a year, renewed with every 15 s run.", {}, 9);
  store.write("scheduler:connections", self, std::chrono::hours(24 * 365), true, seconds(35));
  const int64_t fast_ms = toMillis(clock.now());

  clock.advance(seconds(3));  // scraped 3 s after the fast collector ran
  Exposition exposition(store);
  ParsedExposition p = parseExposition(*exposition.render());
  for (const auto& e : p.errors) ADD_FAILURE() << e;
  ASSERT_NE(findSample(p, "dbpulse_fast_total", {}), nullptr);
  EXPECT_EQ(findSample(p, "dbpulse_fast_total", {})->timestamp_ms, fast_ms);
  EXPECT_EQ(findSample(p, "dbpulse_runs_total", {})->timestamp_ms, fast_ms);
  EXPECT_EQ(findSample(p, "dbpulse_fast_gauge", {})->timestamp_ms, std::nullopt);
  EXPECT_EQ(findSample(p, "dbpulse_slow_total", {})->timestamp_ms, std::nullopt);
  EXPECT_EQ(findSample(p, "dbpulse_events_total", {})->timestamp_ms, std::nullopt);
  static_assert(kTimestampedRenewMaxMs >= 35'000 && kTimestampedRenewMaxMs < 610'000);

  // The collector stops renewing (backed off, switched off): once past its promise the
  // counter is exposed at the scrape's time again, so Prometheus keeps seeing it.
  // (The collector's own series have expired by then: their staleness is the promise.)
  clock.advance(seconds(40));
  store.write("indexes", slow, seconds(610));  // any write rebuilds the snapshot
  p = parseExposition(*exposition.render());
  EXPECT_EQ(findSample(p, "dbpulse_fast_total", {}), nullptr);
  ASSERT_NE(findSample(p, "dbpulse_runs_total", {}), nullptr);
  EXPECT_EQ(findSample(p, "dbpulse_runs_total", {})->timestamp_ms, std::nullopt);
}

}  // namespace
}  // namespace dbpulse::exporters
