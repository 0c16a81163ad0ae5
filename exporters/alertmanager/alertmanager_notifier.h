#pragma once
// AlertmanagerNotifier: delivers the rule engine's AlertNotifications to every configured
// Alertmanager through its API v2 (POST <url>/api/v2/alerts), as Prometheus does in an HA
// setup: each URL is served on its own, never load-balanced, so every Alertmanager gets
// every alert.
//
// Per URL there is an outbox holding the latest notification of each alert (keyed by its
// label set: a newer notification replaces an undelivered older one). An entry leaves the
// outbox when that Alertmanager answered 2xx to a POST containing it, or when it answered a
// 4xx other than 408 and 429 (the payload is wrong and a retry would not help: dropped,
// logged, counted). Other failures (no answer, 5xx, 408, 429) are retried with capped exponential
// backoff per URL. Each outbox is bounded: when full, the oldest resolved notification is dropped
// first, then the oldest firing one (dbpulse_alertmanager_dropped_total{reason}).
//
// Persistence: with a state_dir, the outboxes are written atomically to
// `<state_dir>/alertmanager_outbox.json` after send() queued something (promptly, before the
// network is touched) and after deliveries (debounced), and read back by the constructor, so
// an Alertmanager outage or a kill -9 of dbpulse loses nothing and startsAt survives. A
// missing file is normal; a corrupt one is logged, moved aside to `*.corrupt` and replaced.
//
// Threads: in background mode (the default) one std::jthread per URL delivers, and one more
// writes the state file and the metrics. send() never blocks on the network or the disk.
// With `background = false` nothing runs by itself: tests drive deliveries with
// deliverDue() and saving with flush(), under a fake Clock and a recording transport.
//
// Metrics (written to `metrics_store` under source "alertmanager", if given):
//   dbpulse_alertmanager_notifications_total{result="sent|failed|dropped"}  alerts x URLs
//   dbpulse_alertmanager_dropped_total{reason="outbox_full|rejected"}
//   dbpulse_alertmanager_outbox_size{url}
//   dbpulse_alertmanager_up{url}               1 when the last POST to the URL got a 2xx
//   dbpulse_alertmanager_last_success_timestamp_seconds{url}   0 = never
// An idle URL is probed with an empty POST (`[]`, which Alertmanager accepts) every
// probe_interval, so `up` also tells about an Alertmanager that has nothing to receive.
//
// All public methods are thread-safe.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/core/alert.h"
#include "agent/core/clock.h"
#include "agent/core/duration.h"
#include "agent/core/mutex.h"
#include "agent/core/status.h"
#include "exporters/alertmanager/alert_transport.h"

namespace dbpulse {
class SampleStore;
}

namespace dbpulse::exporters {

// Makes the transport for one configured base URL (e.g. "http://127.0.0.1:9093").
using AlertTransportFactory = std::function<std::unique_ptr<AlertTransport>(const std::string&)>;

// The default factory: libcurl, posting to `<base url without trailing '/'>/api/v2/alerts`.
AlertTransportFactory curlTransportFactory(CurlTransportOptions options = {});

struct AlertmanagerNotifierOptions {
  std::vector<std::string> urls;  // base URLs; duplicates are ignored
  std::string state_dir;          // "" = no persistence
  size_t max_batch = 64;          // alerts per POST
  size_t max_outbox = 10'000;     // entries per URL
  Duration initial_backoff{1'000};
  Duration max_backoff{60'000};
  Duration probe_interval{30'000};  // idle URL health probe; 0 = off
  Duration save_debounce{1'000};    // after deliveries; queued notifications are saved at once
  Duration metrics_refresh{15'000};
  bool background = true;
  AlertTransportFactory transport_factory;  // empty = curlTransportFactory()
  SampleStore* metrics_store = nullptr;     // not owned; must outlive the notifier
};

// RFC 3339 in UTC with milliseconds, as Alertmanager prints them: "2024-05-01T12:00:03.250Z".
std::string formatRfc3339Millis(WallTime t);

// The API v2 body for `alerts`: a JSON array of {labels, annotations, startsAt, endsAt,
// generatorURL}. Zero times and an empty generatorURL are left out (Alertmanager fills in
// the times and rejects an empty URI).
std::string alertsPayload(const std::vector<const AlertNotification*>& alerts);

class AlertmanagerNotifier final : public AlertSink {
 public:
  static constexpr const char* kStateFile = "alertmanager_outbox.json";
  static constexpr const char* kMetricsSource = "alertmanager";

  // Loads the persisted outboxes (entries of URLs no longer configured are discarded) and,
  // in background mode, starts the threads. `clock` must outlive the notifier.
  AlertmanagerNotifier(AlertmanagerNotifierOptions options, const Clock& clock);
  // shutdown().
  ~AlertmanagerNotifier() override;
  AlertmanagerNotifier(const AlertmanagerNotifier&) = delete;
  AlertmanagerNotifier& operator=(const AlertmanagerNotifier&) = delete;

  // Queues every notification for every URL (replacing that alert's undelivered older
  // notification) and wakes the delivery threads. Never blocks on the network or the disk.
  void send(const std::vector<AlertNotification>& alerts) override;

  // Applies a new URL list (reload): outboxes of URLs that remain are kept as they are, those
  // of removed URLs are discarded, new URLs start empty. Waits for removed URLs' threads,
  // whose in-flight POST is cancelled.
  void setUrls(const std::vector<std::string>& urls);

  // Stops the threads (in-flight POSTs are cancelled) and writes the outbox. Idempotent;
  // send() afterwards still queues and persists on the next flush(), nothing is delivered.
  void shutdown();

  // Writes the state file now if anything changed since the last write.
  Status flush();

  // Manual mode: for each URL whose retry time has come, POSTs batches until its outbox is
  // empty or a POST fails; sends a probe to an idle URL whose probe is due. Returns the
  // number of POSTs made. Also usable in background mode, but then races with the threads.
  int deliverDue();

  struct UrlStats {
    std::string url;
    size_t outbox = 0;
    bool up = false;
    WallTime last_success{};
    WallTime next_attempt{};
    Duration backoff{0};
    int consecutive_failures = 0;
  };
  struct Stats {
    uint64_t sent = 0;
    uint64_t failed = 0;
    uint64_t dropped_full = 0;
    uint64_t dropped_rejected = 0;
    std::vector<UrlStats> urls;  // in configuration order
  };
  Stats stats() const;

 private:
  struct Entry {
    AlertNotification alert;
    uint64_t seq = 0;  // order of arrival: "oldest" for eviction and batching
  };
  struct Outbox {
    std::unordered_map<std::string, Entry> entries;  // by label-set key
    std::map<uint64_t, std::string> firing;          // seq -> key
    std::map<uint64_t, std::string> resolved;        // seq -> key
  };
  struct UrlState {
    std::string url;
    std::unique_ptr<AlertTransport> transport;
    Outbox outbox;
    bool wake = false;  // send()/setUrls() changed something this URL's thread should see
    bool up = false;
    bool attempted = false;  // a POST (probe or batch) was attempted at least once
    WallTime last_success{};
    WallTime last_attempt{};
    WallTime next_attempt{};  // retry/backoff gate
    Duration backoff{0};
    int consecutive_failures = 0;
    std::jthread thread;  // background mode; joined before the state goes away
  };
  struct Batch {
    std::vector<std::pair<std::string, uint64_t>> sent;  // key, seq
    std::vector<AlertNotification> alerts;
  };

  // All *Locked functions need mu_.
  void upsertLocked(Outbox& box, const std::string& key, const AlertNotification& alert,
                    uint64_t seq) REQUIRES(mu_);
  void eraseLocked(Outbox& box, const std::string& key) REQUIRES(mu_);
  // Drops the oldest entries (resolved first) beyond max_outbox; returns how many.
  size_t evictLocked(Outbox& box) REQUIRES(mu_);
  // When `u` should POST next (a batch or a probe), or nullopt when it has nothing to do.
  std::optional<WallTime> nextDueLocked(const UrlState& u) const REQUIRES(mu_);
  void clockStepLocked(UrlState& u, WallTime now) REQUIRES(mu_);
  Batch takeBatchLocked(const UrlState& u) const REQUIRES(mu_);
  void finishLocked(UrlState& u, const Batch& batch, const TransportResult& result) REQUIRES(mu_);
  // One POST for `u` if due: takes the batch under mu_, posts with it released (the
  // transport never throws). Returns false when nothing was due.
  bool deliverOnce(UrlState& u) REQUIRES(mu_);
  void markChangedLocked(bool urgent) REQUIRES(mu_);

  void startThreadLocked(UrlState& u) REQUIRES(mu_);
  void deliveryLoop(std::stop_token stop, UrlState* u);
  void housekeepingLoop(std::stop_token stop);

  void load();
  void publishMetrics();
  std::shared_ptr<UrlState> makeUrlState(const std::string& url);

  const AlertmanagerNotifierOptions options_;
  const Clock& clock_;
  const std::string state_path_;  // "" = no persistence

  Mutex save_mu_;  // one writer of the state file at a time; taken before mu_
  std::string last_save_error_ GUARDED_BY(save_mu_);
  Mutex metrics_mu_;  // orders metric writes; taken before mu_
  mutable Mutex mu_;
  std::condition_variable_any cv_;
  // shared_ptr: deliverDue() and setUrls() keep a removed URL's state alive until done.
  std::vector<std::shared_ptr<UrlState>> urls_ GUARDED_BY(mu_);
  uint64_t next_seq_ GUARDED_BY(mu_) = 1;
  uint64_t change_gen_ GUARDED_BY(mu_) = 0;   // bumped on every change
  uint64_t saved_gen_ GUARDED_BY(mu_) = 0;    // written to disk
  bool urgent_save_ GUARDED_BY(mu_) = false;  // queued, not yet saved
  bool stopped_ GUARDED_BY(mu_) = false;
  uint64_t sent_ GUARDED_BY(mu_) = 0;
  uint64_t failed_ GUARDED_BY(mu_) = 0;
  uint64_t dropped_full_ GUARDED_BY(mu_) = 0;
  uint64_t dropped_rejected_ GUARDED_BY(mu_) = 0;
  std::jthread housekeeper_;
};

}  // namespace dbpulse::exporters
