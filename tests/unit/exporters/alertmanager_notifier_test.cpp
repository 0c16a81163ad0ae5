#include "exporters/alertmanager/alertmanager_notifier.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "agent/core/sample_store.h"
#include "tests/fakes/fake_clock.h"

namespace dbpulse::exporters {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace std::chrono_literals;

using fakes::FakeClock;
constexpr int64_t kClockStartMs = 1'714'564'800'000;  // 2024-05-01T12:00Z

// Records every POST per URL and answers from a script (default 200).
class FakeNetwork {
 public:
  struct Post {
    std::string url;
    Json body;
  };

  void script(const std::string& url, std::vector<TransportResult> answers) {
    std::lock_guard lock(mu_);
    for (auto& a : answers) scripted_[url].push_back(std::move(a));
  }
  void setDefault(const std::string& url, TransportResult answer) {
    std::lock_guard lock(mu_);
    defaults_[url] = std::move(answer);
  }
  // Runs during the next POST to `url`, before it is answered.
  void onNextPost(const std::string& url, std::function<void()> hook) {
    std::lock_guard lock(mu_);
    hooks_[url] = std::move(hook);
  }

  TransportResult post(const std::string& url, const std::string& body) {
    std::function<void()> hook;
    TransportResult answer{200, "", false};
    {
      std::lock_guard lock(mu_);
      posts_.push_back(Post{url, Json::parse(body)});
      if (auto it = hooks_.find(url); it != hooks_.end()) {
        hook = std::move(it->second);
        hooks_.erase(it);
      }
      if (auto& q = scripted_[url]; !q.empty()) {
        answer = q.front();
        q.pop_front();
      } else if (auto d = defaults_.find(url); d != defaults_.end()) {
        answer = d->second;
      }
    }
    if (hook) hook();
    return answer;
  }

  std::vector<Post> posts(const std::string& url = "") const {
    std::lock_guard lock(mu_);
    std::vector<Post> out;
    for (const auto& p : posts_) {
      if (url.empty() || p.url == url) out.push_back(p);
    }
    return out;
  }
  // Alert names received by `url` in every non-empty POST, in order.
  std::vector<std::string> alertnames(const std::string& url) const {
    std::vector<std::string> out;
    for (const auto& p : posts(url)) {
      for (const auto& a : p.body) out.push_back(a["labels"]["alertname"]);
    }
    return out;
  }

  AlertTransportFactory factory() {
    return [this](const std::string& url) -> std::unique_ptr<AlertTransport> {
      struct Transport final : AlertTransport {
        FakeNetwork* net;
        std::string url;
        TransportResult post(const std::string& body) override { return net->post(url, body); }
      };
      auto t = std::make_unique<Transport>();
      t->net = this;
      t->url = url;
      return t;
    };
  }

 private:
  mutable std::mutex mu_;
  std::vector<Post> posts_;
  std::map<std::string, std::deque<TransportResult>> scripted_;
  std::map<std::string, TransportResult> defaults_;
  std::map<std::string, std::function<void()>> hooks_;
};

AlertNotification alert(const std::string& name, const FakeClock& clock, bool resolved = false,
                        const std::string& extra_label = "") {
  AlertNotification a;
  a.labels = Labels{{"alertname", name}, {"instance", "chat-0"}, {"severity", "critical"}};
  if (!extra_label.empty()) a.labels.set("x", extra_label);
  a.annotations = Labels{{"summary", name + " happened"}};
  a.starts_at = clock.now() - 5min;
  a.ends_at = resolved ? clock.now() : clock.now() + 4min;
  a.generator_url = "http://chat-0:9470/admin/rules";
  a.resolved = resolved;
  return a;
}

class TempStateDir {
 public:
  TempStateDir() {
    std::string templ = (fs::temp_directory_path() / "dbpulse-am-unit-XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~TempStateDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path file() const { return path_ / AlertmanagerNotifier::kStateFile; }

 private:
  fs::path path_;
};

const std::string kA = "http://am-a:9093";
const std::string kB = "http://am-b:9093";
const std::string kC = "http://am-c:9093";

class AlertmanagerNotifierTest : public ::testing::Test {
 protected:
  AlertmanagerNotifierOptions options(std::vector<std::string> urls) {
    AlertmanagerNotifierOptions o;
    o.urls = std::move(urls);
    o.background = false;
    o.probe_interval = Duration(0);
    o.transport_factory = net_.factory();
    return o;
  }

  FakeClock clock_{kClockStartMs};
  FakeNetwork net_;
};

TEST_F(AlertmanagerNotifierTest, EveryUrlGetsEveryAlert) {
  AlertmanagerNotifier n(options({kA, kB, kC}), clock_);
  n.send({alert("A1", clock_), alert("A2", clock_), alert("A3", clock_, true)});
  EXPECT_EQ(n.deliverDue(), 3);
  for (const auto& url : {kA, kB, kC}) {
    EXPECT_EQ(net_.alertnames(url), (std::vector<std::string>{"A1", "A2", "A3"})) << url;
  }
  const auto s = n.stats();
  EXPECT_EQ(s.sent, 9u);
  for (const auto& u : s.urls) {
    EXPECT_EQ(u.outbox, 0u);
    EXPECT_TRUE(u.up);
  }
  EXPECT_EQ(n.deliverDue(), 0) << "nothing left to send";
}

TEST_F(AlertmanagerNotifierTest, DuplicateUrlsAreServedOnce) {
  AlertmanagerNotifier n(options({kA, kA}), clock_);
  n.send({alert("A1", clock_)});
  EXPECT_EQ(n.deliverDue(), 1);
  EXPECT_EQ(n.stats().urls.size(), 1u);
}

TEST_F(AlertmanagerNotifierTest, BatchesAtMostMaxBatchAlertsPerPost) {
  auto o = options({kA});
  o.max_batch = 64;
  AlertmanagerNotifier n(o, clock_);
  std::vector<AlertNotification> alerts;
  for (int i = 0; i < 150; ++i) alerts.push_back(alert("A" + std::to_string(i), clock_));
  n.send(alerts);
  EXPECT_EQ(n.deliverDue(), 3);
  const auto posts = net_.posts(kA);
  ASSERT_EQ(posts.size(), 3u);
  EXPECT_EQ(posts[0].body.size(), 64u);
  EXPECT_EQ(posts[1].body.size(), 64u);
  EXPECT_EQ(posts[2].body.size(), 22u);
  const auto names = net_.alertnames(kA);
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), 150u);
  EXPECT_EQ(names.front(), "A0") << "oldest first";
  EXPECT_EQ(names.back(), "A149");
}

TEST_F(AlertmanagerNotifierTest, RetriesWithCappedExponentialBackoffOn5xx) {
  auto o = options({kA});
  o.initial_backoff = Duration(1000);
  o.max_backoff = Duration(4000);
  AlertmanagerNotifier n(o, clock_);
  net_.script(kA, {{503, "busy"}, {500, ""}, {502, ""}, {503, ""}, {200, ""}});
  n.send({alert("A1", clock_)});

  // Attempt 1 fails at t=0; the following ones wait 1 s, 2 s, 4 s, 4 s (capped).
  EXPECT_EQ(n.deliverDue(), 1);
  for (Duration wait : {Duration(1000), Duration(2000), Duration(4000), Duration(4000)}) {
    clock_.advance(wait - Duration(1));
    EXPECT_EQ(n.deliverDue(), 0) << "too early by 1 ms before waiting " << wait.count();
    clock_.advance(Duration(1));
    EXPECT_EQ(n.deliverDue(), 1) << "due after " << wait.count() << " ms";
  }
  const auto s = n.stats();
  EXPECT_EQ(s.failed, 4u);
  EXPECT_EQ(s.sent, 1u);
  EXPECT_EQ(s.urls[0].outbox, 0u);
  EXPECT_TRUE(s.urls[0].up);
  EXPECT_EQ(s.urls[0].backoff, Duration(0)) << "success resets the backoff";
  EXPECT_EQ(net_.posts(kA).size(), 5u);
}

TEST_F(AlertmanagerNotifierTest, WallClockSteppingBackDoesNotStallRetries) {
  AlertmanagerNotifier n(options({kA}), clock_);
  net_.script(kA, {{503, ""}});
  n.send({alert("A1", clock_)});
  EXPECT_EQ(n.deliverDue(), 1);
  clock_.advance(-1h);
  EXPECT_EQ(n.deliverDue(), 0) << "the 1 s backoff restarts from the new now";
  clock_.advance(1s);
  EXPECT_EQ(n.deliverDue(), 1) << "not an hour later";
  EXPECT_EQ(n.stats().urls[0].outbox, 0u);
}

TEST_F(AlertmanagerNotifierTest, ConnectionRefusedAnd429AreRetried) {
  AlertmanagerNotifier n(options({kA}), clock_);
  net_.script(kA, {{0, "Failed to connect: Connection refused"}, {429, "slow down"}});
  n.send({alert("A1", clock_)});
  EXPECT_EQ(n.deliverDue(), 1);
  EXPECT_FALSE(n.stats().urls[0].up);
  clock_.advance(1s);
  EXPECT_EQ(n.deliverDue(), 1);
  EXPECT_EQ(n.stats().urls[0].outbox, 1u) << "429 keeps the batch";
  clock_.advance(2s);
  EXPECT_EQ(n.deliverDue(), 1);
  EXPECT_EQ(n.stats().urls[0].outbox, 0u);
  EXPECT_EQ(net_.alertnames(kA), (std::vector<std::string>{"A1", "A1", "A1"}));
}

TEST_F(AlertmanagerNotifierTest, OneFailingUrlDoesNotHoldUpTheOthers) {
  AlertmanagerNotifier n(options({kA, kB}), clock_);
  net_.setDefault(kA, {0, "Connection refused"});
  n.send({alert("A1", clock_)});
  n.deliverDue();
  const auto s = n.stats();
  EXPECT_EQ(s.urls[0].outbox, 1u);
  EXPECT_FALSE(s.urls[0].up);
  EXPECT_EQ(s.urls[1].outbox, 0u);
  EXPECT_TRUE(s.urls[1].up);
  EXPECT_EQ(net_.alertnames(kB), (std::vector<std::string>{"A1"}));
}

TEST_F(AlertmanagerNotifierTest, A4xxDropsTheBatchAndCountsIt) {
  auto o = options({kA});
  o.max_batch = 2;
  AlertmanagerNotifier n(o, clock_);
  net_.script(kA, {{400, "{\"code\":400,\"message\":\"bad labels\"}"}, {200, ""}});
  n.send({alert("A1", clock_), alert("A2", clock_), alert("A3", clock_)});
  EXPECT_EQ(n.deliverDue(), 1) << "a rejected batch ends this round";
  auto s = n.stats();
  EXPECT_EQ(s.dropped_rejected, 2u);
  EXPECT_EQ(s.urls[0].outbox, 1u);
  EXPECT_EQ(n.deliverDue(), 1) << "no backoff after a rejection: the payload was the problem";
  s = n.stats();
  EXPECT_EQ(s.urls[0].outbox, 0u);
  EXPECT_EQ(s.sent, 1u);
  EXPECT_EQ(net_.alertnames(kA), (std::vector<std::string>{"A1", "A2", "A3"}));
}

TEST_F(AlertmanagerNotifierTest, LatestNotificationOfAnAlertWins) {
  AlertmanagerNotifier n(options({kA}), clock_);
  net_.setDefault(kA, {503, ""});
  n.send({alert("A1", clock_), alert("A2", clock_)});
  n.deliverDue();  // fails: both wait
  clock_.advance(10s);
  AlertNotification resolved = alert("A1", clock_, /*resolved=*/true);
  n.send({resolved});
  EXPECT_EQ(n.stats().urls[0].outbox, 2u) << "same label set: replaced, not added";
  net_.setDefault(kA, {200, ""});
  EXPECT_EQ(n.deliverDue(), 1);
  const auto last = net_.posts(kA).back().body;
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[0]["labels"]["alertname"], "A2") << "oldest first";
  EXPECT_EQ(last[1]["labels"]["alertname"], "A1");
  EXPECT_EQ(last[1]["endsAt"], formatRfc3339Millis(resolved.ends_at)) << "the resolved state";
}

TEST_F(AlertmanagerNotifierTest, NotificationArrivingDuringAPostIsNotLostByItsSuccess) {
  AlertmanagerNotifier n(options({kA}), clock_);
  const AlertNotification firing = alert("A1", clock_);
  n.send({firing});
  const AlertNotification resolved = alert("A1", clock_, true);
  net_.onNextPost(kA, [&] { n.send({resolved}); });
  EXPECT_EQ(n.deliverDue(), 2) << "the newer state is sent right after";
  const auto posts = net_.posts(kA);
  ASSERT_EQ(posts.size(), 2u);
  EXPECT_EQ(posts[0].body[0]["endsAt"], formatRfc3339Millis(firing.ends_at));
  EXPECT_EQ(posts[1].body[0]["endsAt"], formatRfc3339Millis(resolved.ends_at));
  EXPECT_EQ(n.stats().urls[0].outbox, 0u);
}

TEST_F(AlertmanagerNotifierTest, FullOutboxDropsOldestResolvedFirstThenOldestFiring) {
  auto o = options({kA});
  o.max_outbox = 3;
  SampleStore store(clock_);
  o.metrics_store = &store;
  AlertmanagerNotifier n(o, clock_);
  net_.setDefault(kA, {0, "Connection refused"});
  n.send({alert("F1", clock_)});
  n.send({alert("R1", clock_, true)});
  n.send({alert("R2", clock_, true)});
  n.send({alert("F2", clock_)});  // full: R1 (oldest resolved) goes
  EXPECT_EQ(n.stats().dropped_full, 1u);
  n.send({alert("F3", clock_)});  // R2 goes
  n.send({alert("F4", clock_)});  // no resolved left: F1 (oldest firing) goes
  EXPECT_EQ(n.stats().dropped_full, 3u);

  net_.setDefault(kA, {200, ""});
  n.deliverDue();
  const auto names = net_.alertnames(kA);
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()),
            (std::set<std::string>{"F2", "F3", "F4"}));

  auto snap = store.snapshot();
  const SnapshotFamily* dropped = snap->family("dbpulse_alertmanager_dropped_total");
  ASSERT_NE(dropped, nullptr);
  bool found = false;
  for (const auto& s : dropped->series) {
    if (s.labels.get("reason") == "outbox_full") {
      EXPECT_EQ(s.value, 3);
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(AlertmanagerNotifierTest, PayloadIsAlertmanagerApiV2) {
  AlertmanagerNotifier n(options({kA}), clock_);
  AlertNotification a = alert("PgDown", clock_);
  a.starts_at = WallTime(std::chrono::milliseconds(1'714'564'803'250));
  a.ends_at = WallTime(std::chrono::milliseconds(1'714'565'043'007));
  AlertNotification bare;
  bare.labels = Labels{{"alertname", "Bare"}};
  n.send({a, bare});
  n.deliverDue();
  const Json body = net_.posts(kA).at(0).body;
  ASSERT_TRUE(body.is_array());
  const Json expected = Json::parse(R"([
    {"labels": {"alertname": "PgDown", "instance": "chat-0", "severity": "critical"},
     "annotations": {"summary": "PgDown happened"},
     "startsAt": "2024-05-01T12:00:03.250Z",
     "endsAt": "2024-05-01T12:04:03.007Z",
     "generatorURL": "http://chat-0:9470/admin/rules"},
    {"labels": {"alertname": "Bare"}, "annotations": {}}
  ])");
  EXPECT_EQ(body, expected) << body.dump(2);
}

TEST(AlertPayloadTest, FormatsRfc3339InUtcWithMillis) {
  EXPECT_EQ(formatRfc3339Millis(WallTime(std::chrono::milliseconds(0))),
            "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(formatRfc3339Millis(WallTime(std::chrono::milliseconds(951'782'400'999))),
            "2000-02-29T00:00:00.999Z");
  EXPECT_EQ(formatRfc3339Millis(WallTime(std::chrono::microseconds(1'500'999))),
            "1970-01-01T00:00:01.500Z")
      << "truncated, never rounded up into the next second";
}

TEST(AlertPayloadTest, InvalidUtf8InALabelValueDoesNotThrow) {
  AlertNotification a;
  a.labels = Labels{{"alertname", "X"}, {"query", "bad \xff byte"}};
  const std::string body = alertsPayload({&a});
  EXPECT_TRUE(Json::accept(body)) << body;
}

TEST_F(AlertmanagerNotifierTest, PersistedOutboxSurvivesARestartWithItsStartsAt) {
  TempStateDir dir;
  auto o = options({kA, kB});
  o.state_dir = dir.path().string();
  net_.setDefault(kA, {0, "Connection refused"});
  net_.setDefault(kB, {0, "Connection refused"});
  const AlertNotification firing = alert("A1", clock_);
  const AlertNotification resolved = alert("A2", clock_, true);
  {
    AlertmanagerNotifier first(o, clock_);
    first.send({firing, resolved});
    ASSERT_TRUE(first.flush().ok());
    first.deliverDue();
    // A second notifier reads the file as it is now, as after a kill -9 of the first.
    auto o2 = o;
    o2.urls = {kA, kC};  // kB is gone from the configuration
    AlertmanagerNotifier second(o2, clock_);
    auto s = second.stats();
    EXPECT_EQ(s.urls[0].outbox, 2u) << kA;
    EXPECT_EQ(s.urls[1].outbox, 0u) << kC << " is new: nothing for it";
    net_.setDefault(kA, {200, ""});
    EXPECT_EQ(second.deliverDue(), 1);
    const Json body = net_.posts(kA).back().body;
    ASSERT_EQ(body.size(), 2u);
    EXPECT_EQ(body[0]["labels"]["alertname"], "A1") << "order kept";
    EXPECT_EQ(body[0]["startsAt"], formatRfc3339Millis(firing.starts_at));
    EXPECT_EQ(body[0]["endsAt"], formatRfc3339Millis(firing.ends_at));
    EXPECT_EQ(body[0]["annotations"]["summary"], "A1 happened");
    EXPECT_EQ(body[0]["generatorURL"], firing.generator_url);
    EXPECT_EQ(body[1]["endsAt"], formatRfc3339Millis(resolved.ends_at));
    ASSERT_TRUE(second.flush().ok());
  }
  const Json saved = Json::parse(std::ifstream(dir.file()));
  ASSERT_EQ(saved["outboxes"].size(), 2u) << saved.dump();
  for (const auto& box : saved["outboxes"]) {
    EXPECT_NE(box["url"], kB) << "entries of a removed URL are discarded";
    EXPECT_TRUE(box["alerts"].empty()) << box.dump();
  }
}

TEST_F(AlertmanagerNotifierTest, CorruptStateFileIsMovedAsideAndReplaced) {
  TempStateDir dir;
  { std::ofstream(dir.file()) << "{\"version\":1,\"outboxes\":[{\"url\":"; }
  auto o = options({kA});
  o.state_dir = dir.path().string();
  net_.setDefault(kA, {503, ""});
  AlertmanagerNotifier n(o, clock_);
  EXPECT_EQ(n.stats().urls[0].outbox, 0u);
  EXPECT_TRUE(fs::exists(dir.path() / "alertmanager_outbox.json.corrupt"));
  n.send({alert("A1", clock_)});
  ASSERT_TRUE(n.flush().ok());
  const Json saved = Json::parse(std::ifstream(dir.file()));
  EXPECT_EQ(saved["outboxes"][0]["alerts"].size(), 1u);
}

TEST_F(AlertmanagerNotifierTest, WrongShapeInTheStateFileLoadsNothing) {
  TempStateDir dir;
  {
    std::ofstream(dir.file()) << R"({"version":1,"outboxes":[{"url":"http://am-a:9093","alerts":[
      {"labels":{"alertname":"ok"},"annotations":{},"starts_at_ns":1,"ends_at_ns":2,
       "generator_url":"","resolved":false},
      {"labels":{"alertname":7}}]}]})";
  }
  auto o = options({kA});
  o.state_dir = dir.path().string();
  AlertmanagerNotifier n(o, clock_);
  EXPECT_EQ(n.stats().urls[0].outbox, 0u);
}

TEST_F(AlertmanagerNotifierTest, ShutdownWritesTheOutbox) {
  TempStateDir dir;
  auto o = options({kA});
  o.state_dir = dir.path().string();
  {
    AlertmanagerNotifier n(o, clock_);
    n.send({alert("A1", clock_)});
  }  // no flush(): the destructor shuts down and writes
  const Json saved = Json::parse(std::ifstream(dir.file()));
  EXPECT_EQ(saved["outboxes"][0]["alerts"][0]["labels"]["alertname"], "A1");
}

TEST_F(AlertmanagerNotifierTest, SetUrlsKeepsTheOutboxesOfRemainingUrls) {
  SampleStore store(clock_);
  auto o = options({kA, kB});
  o.metrics_store = &store;
  AlertmanagerNotifier n(o, clock_);
  net_.setDefault(kA, {503, ""});
  net_.setDefault(kB, {503, ""});
  n.send({alert("A1", clock_)});
  n.deliverDue();
  n.setUrls({kB, kC});
  const auto s = n.stats();
  ASSERT_EQ(s.urls.size(), 2u);
  EXPECT_EQ(s.urls[0].url, kB);
  EXPECT_EQ(s.urls[0].outbox, 1u);
  EXPECT_EQ(s.urls[1].url, kC);
  EXPECT_EQ(s.urls[1].outbox, 0u);
  auto snap = store.snapshot();
  for (const auto& series : snap->family("dbpulse_alertmanager_up")->series) {
    EXPECT_NE(series.labels.get("url"), kA) << "series of a removed URL disappear";
  }
  net_.setDefault(kB, {200, ""});
  clock_.advance(1s);
  n.deliverDue();
  EXPECT_EQ(net_.alertnames(kB).back(), "A1");
}

TEST_F(AlertmanagerNotifierTest, IdleUrlIsProbedSoUpIsKnown) {
  auto o = options({kA});
  o.probe_interval = Duration(30'000);
  SampleStore store(clock_);
  o.metrics_store = &store;
  AlertmanagerNotifier n(o, clock_);
  EXPECT_EQ(n.deliverDue(), 1) << "first probe at start";
  EXPECT_TRUE(net_.posts(kA).at(0).body.empty()) << "a probe posts []";
  EXPECT_TRUE(n.stats().urls[0].up);
  EXPECT_EQ(n.deliverDue(), 0);
  clock_.advance(30s);
  net_.setDefault(kA, {0, "Connection refused"});
  EXPECT_EQ(n.deliverDue(), 1);
  EXPECT_FALSE(n.stats().urls[0].up);
  EXPECT_EQ(n.stats().failed, 0u) << "a probe carries no notifications";

  auto snap = store.snapshot();
  const SnapshotFamily* up = snap->family("dbpulse_alertmanager_up");
  ASSERT_NE(up, nullptr);
  ASSERT_EQ(up->series.size(), 1u);
  EXPECT_EQ(up->series[0].labels.get("url"), kA);
  EXPECT_EQ(up->series[0].value, 0);
  const SnapshotFamily* last = snap->family("dbpulse_alertmanager_last_success_timestamp_seconds");
  ASSERT_NE(last, nullptr);
  EXPECT_DOUBLE_EQ(last->series[0].value,
                   static_cast<double>(toMillis(clock_.now() - 30s)) / 1000.0);
}

TEST_F(AlertmanagerNotifierTest, NotificationsTotalCountsEveryOutcome) {
  auto o = options({kA, kB});
  SampleStore store(clock_);
  o.metrics_store = &store;
  AlertmanagerNotifier n(o, clock_);
  net_.script(kA, {{503, ""}});
  net_.script(kB, {{422, "invalid"}});
  n.send({alert("A1", clock_), alert("A2", clock_)});
  n.deliverDue();
  clock_.advance(1s);
  n.deliverDue();
  auto snap = store.snapshot();
  std::map<std::string, double> by_result;
  for (const auto& s : snap->family("dbpulse_alertmanager_notifications_total")->series) {
    by_result[std::string(s.labels.get("result"))] = s.value;
  }
  EXPECT_EQ(by_result["sent"], 2);
  EXPECT_EQ(by_result["failed"], 2);
  EXPECT_EQ(by_result["dropped"], 2);
  const SnapshotFamily* size = snap->family("dbpulse_alertmanager_outbox_size");
  ASSERT_NE(size, nullptr);
  EXPECT_EQ(size->series.size(), 2u);
}

// Background mode: real threads, real time, a transport that blocks until released.
TEST(AlertmanagerNotifierBackgroundTest, SendNeverWaitsForTheNetworkAndTheThreadDelivers) {
  TempStateDir dir;
  SystemClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> posts{0};
  std::atomic<int> delivered_alerts{0};
  AlertmanagerNotifierOptions o;
  o.urls = {kA};
  o.state_dir = dir.path().string();
  o.probe_interval = Duration(0);
  o.initial_backoff = Duration(20);
  o.transport_factory = [&](const std::string&) -> std::unique_ptr<AlertTransport> {
    struct Blocking final : AlertTransport {
      std::function<TransportResult(const std::string&)> fn;
      TransportResult post(const std::string& body) override { return fn(body); }
    };
    auto t = std::make_unique<Blocking>();
    t->fn = [&](const std::string& body) {
      const int n = ++posts;
      if (n == 1) return TransportResult{503, "", false};  // first attempt fails: backoff
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return release; });
      delivered_alerts += static_cast<int>(Json::parse(body).size());
      return TransportResult{200, "", false};
    };
    return t;
  };
  AlertmanagerNotifier n(o, clock);
  FakeClock fc{kClockStartMs};
  const auto started = std::chrono::steady_clock::now();
  n.send({alert("A1", fc)});
  // The retry after 20 ms blocks in the transport; send() must still return at once.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (posts.load() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(posts.load(), 2);
  n.send({alert("A2", fc)});
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  // Both notifications reach the disk while the POST hangs.
  bool saved = false;
  while (!saved && std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(dir.file());
    std::stringstream text;
    text << in.rdbuf();
    saved = text.str().find("A2") != std::string::npos;
    if (!saved) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(saved);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  while (n.stats().urls[0].outbox > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(n.stats().urls[0].outbox, 0u);
  EXPECT_EQ(delivered_alerts.load(), 2);
  n.shutdown();
  const Json after = Json::parse(std::ifstream(dir.file()));
  EXPECT_TRUE(after["outboxes"][0]["alerts"].empty()) << "deliveries are saved too";
}

TEST(AlertmanagerNotifierBackgroundTest, ShutdownCancelsAHangingPost) {
  SystemClock clock;
  std::atomic<bool> cancelled{false};
  std::atomic<bool> in_post{false};
  AlertmanagerNotifierOptions o;
  o.urls = {kA};
  o.transport_factory = [&](const std::string&) -> std::unique_ptr<AlertTransport> {
    struct Hanging final : AlertTransport {
      std::atomic<bool>* cancelled;
      std::atomic<bool>* in_post;
      TransportResult post(const std::string&) override {
        in_post->store(true);
        while (!cancelled->load()) std::this_thread::sleep_for(1ms);
        return TransportResult{0, "cancelled", true};
      }
      void cancel() override { cancelled->store(true); }
    };
    auto t = std::make_unique<Hanging>();
    t->cancelled = &cancelled;
    t->in_post = &in_post;
    return t;
  };
  AlertmanagerNotifier n(o, clock);  // probes at once: the probe hangs
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!in_post.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(in_post.load());
  n.shutdown();
  EXPECT_TRUE(cancelled.load());
  EXPECT_EQ(n.stats().failed, 0u) << "a cancelled POST is not an Alertmanager failure";
}

TEST(CurlTransportTest, ConnectionRefusedIsStatusZeroWithAReason) {
  // Port 1 on loopback: nothing listens there on a test machine.
  auto t = curlTransportFactory()("http://127.0.0.1:1/");
  const TransportResult r = t->post("[]");
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.detail.empty());
  EXPECT_FALSE(r.cancelled);
}

TEST(CurlTransportTest, CancelEndsAPostToAServerThatNeverAnswers) {
  // A listening socket that never accepts: the connection completes in the kernel's backlog
  // and the request then waits for an answer that never comes.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  CurlTransportOptions options;
  options.timeout = Duration(30'000);
  auto t =
      curlTransportFactory(options)("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  const auto started = std::chrono::steady_clock::now();
  std::jthread canceller([&] {
    std::this_thread::sleep_for(200ms);  // let the request start waiting
    t->cancel();
  });
  const TransportResult r = t->post("[]");
  const auto took = std::chrono::steady_clock::now() - started;
  ::close(fd);
  EXPECT_TRUE(r.cancelled) << r.detail;
  EXPECT_EQ(r.status, 0);
  EXPECT_LT(took, 5s) << "the progress callback sees cancel() about once a second";
}

}  // namespace
}  // namespace dbpulse::exporters
