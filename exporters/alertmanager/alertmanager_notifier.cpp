#include "exporters/alertmanager/alertmanager_notifier.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "agent/core/atomic_file.h"
#include "agent/core/sample.h"
#include "agent/core/sample_store.h"

namespace dbpulse::exporters {
namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// Version 1: {"version":1,"outboxes":[{"url":..., "alerts":[{labels, annotations,
// starts_at_ns, ends_at_ns, generator_url, resolved}, ...oldest first]}]}
constexpr int kStateVersion = 1;

std::string labelKey(const Labels& labels) {
  std::string key;
  labels.appendKey(key);
  return key;
}

Json labelsJson(const Labels& labels) {
  Json j = Json::object();
  for (const auto& l : labels.items()) j[l.name] = l.value;
  return j;
}

// Throws nlohmann exceptions on a wrong shape; the caller catches them.
Labels labelsFromJson(const Json& j) {
  Labels labels;
  for (const auto& [name, value] : j.items()) labels.set(name, value.get<std::string>());
  return labels;
}

int64_t toNanos(WallTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

WallTime fromNanos(int64_t ns) {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::nanoseconds(ns)));
}

// Label values may hold bytes that are not UTF-8; JSON cannot, so they are replaced
// (U+FFFD) rather than making dump() throw.
std::string dumpJson(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool isRetryable(long status) {
  return status == 0 || status == 408 || status == 429 || status >= 500;
}

std::string shortDetail(const std::string& detail) {
  std::string out = detail.substr(0, 200);
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

std::string trimSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::vector<std::string> dedup(const std::vector<std::string>& urls) {
  std::vector<std::string> out;
  for (const auto& u : urls) {
    if (std::find(out.begin(), out.end(), u) == out.end()) out.push_back(u);
  }
  return out;
}

}  // namespace

std::string formatRfc3339Millis(WallTime t) {
  const int64_t ms = toMillis(t);
  int64_t secs = ms / 1000;
  int64_t millis = ms % 1000;
  if (millis < 0) {
    millis += 1000;
    secs -= 1;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  return buf;
}

std::string alertsPayload(const std::vector<const AlertNotification*>& alerts) {
  Json arr = Json::array();
  for (const AlertNotification* a : alerts) {
    Json j{{"labels", labelsJson(a->labels)}, {"annotations", labelsJson(a->annotations)}};
    if (a->starts_at.time_since_epoch().count() != 0) {
      j["startsAt"] = formatRfc3339Millis(a->starts_at);
    }
    if (a->ends_at.time_since_epoch().count() != 0) j["endsAt"] = formatRfc3339Millis(a->ends_at);
    if (!a->generator_url.empty()) j["generatorURL"] = a->generator_url;
    arr.push_back(std::move(j));
  }
  return dumpJson(arr);
}

AlertTransportFactory curlTransportFactory(CurlTransportOptions options) {
  return [options = std::move(options)](const std::string& base_url) {
    return makeCurlTransport(trimSlash(base_url) + "/api/v2/alerts", options);
  };
}

AlertmanagerNotifier::AlertmanagerNotifier(AlertmanagerNotifierOptions options, const Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      state_path_(options_.state_dir.empty()
                      ? std::string()
                      : (std::filesystem::path(options_.state_dir) / kStateFile).string()) {
  for (const auto& url : dedup(options_.urls)) urls_.push_back(makeUrlState(url));
  load();
  publishMetrics();
  if (options_.background) {
    MutexLock lock(mu_);
    for (auto& u : urls_) startThreadLocked(*u);
    housekeeper_ = std::jthread([this](std::stop_token stop) { housekeepingLoop(stop); });
  }
}

AlertmanagerNotifier::~AlertmanagerNotifier() { shutdown(); }

std::shared_ptr<AlertmanagerNotifier::UrlState> AlertmanagerNotifier::makeUrlState(
    const std::string& url) {
  auto u = std::make_shared<UrlState>();
  u->url = url;
  u->transport =
      options_.transport_factory ? options_.transport_factory(url) : curlTransportFactory()(url);
  u->next_attempt = clock_.now();
  return u;
}

void AlertmanagerNotifier::startThreadLocked(UrlState& u) {
  UrlState* raw = &u;
  u.thread = std::jthread([this, raw](std::stop_token stop) { deliveryLoop(stop, raw); });
}

// ---- outbox ------------------------------------------------------------------------------

void AlertmanagerNotifier::eraseLocked(Outbox& box, const std::string& key) {
  auto it = box.entries.find(key);
  if (it == box.entries.end()) return;
  (it->second.alert.resolved ? box.resolved : box.firing).erase(it->second.seq);
  box.entries.erase(it);
}

void AlertmanagerNotifier::upsertLocked(Outbox& box, const std::string& key,
                                        const AlertNotification& alert, uint64_t seq) {
  eraseLocked(box, key);
  box.entries.emplace(key, Entry{alert, seq});
  (alert.resolved ? box.resolved : box.firing).emplace(seq, key);
}

size_t AlertmanagerNotifier::evictLocked(Outbox& box) {
  // A resolved notification is the cheaper loss: Alertmanager resolves an alert by itself
  // once its endsAt passes. A firing one dropped may be an alert nobody hears of.
  size_t dropped = 0;
  while (box.entries.size() > std::max<size_t>(options_.max_outbox, 1)) {
    auto& index = box.resolved.empty() ? box.firing : box.resolved;
    const std::string key = index.begin()->second;
    eraseLocked(box, key);
    ++dropped;
  }
  dropped_full_ += dropped;
  return dropped;
}

void AlertmanagerNotifier::markChangedLocked(bool urgent) {
  ++change_gen_;
  if (urgent) urgent_save_ = true;
}

void AlertmanagerNotifier::send(const std::vector<AlertNotification>& alerts) {
  if (alerts.empty()) return;
  {
    MutexLock lock(mu_);
    if (urls_.empty()) return;
    std::vector<std::string> keys;
    keys.reserve(alerts.size());
    for (const auto& a : alerts) keys.push_back(labelKey(a.labels));
    for (auto& u : urls_) {
      for (size_t i = 0; i < alerts.size(); ++i) {
        upsertLocked(u->outbox, keys[i], alerts[i], next_seq_ + i);
      }
      if (const size_t dropped = evictLocked(u->outbox); dropped > 0) {
        spdlog::warn(
            "alertmanager {}: outbox full ({} notifications): dropped the {} oldest "
            "(resolved first)",
            u->url, options_.max_outbox, dropped);
      }
      u->wake = true;
    }
    next_seq_ += alerts.size();
    markChangedLocked(true);
  }
  cv_.notify_all();
  publishMetrics();
}

// ---- delivery ----------------------------------------------------------------------------

std::optional<WallTime> AlertmanagerNotifier::nextDueLocked(const UrlState& u) const {
  if (!u.outbox.entries.empty()) return u.next_attempt;
  if (options_.probe_interval.count() <= 0) return std::nullopt;
  if (!u.attempted) return u.next_attempt;
  return std::max(u.last_attempt + options_.probe_interval, u.next_attempt);
}

AlertmanagerNotifier::Batch AlertmanagerNotifier::takeBatchLocked(const UrlState& u) const {
  // Oldest first across firing and resolved, so neither kind can starve the other.
  Batch batch;
  const Outbox& box = u.outbox;
  auto f = box.firing.begin();
  auto r = box.resolved.begin();
  const size_t limit = std::max<size_t>(options_.max_batch, 1);
  while (batch.sent.size() < limit && (f != box.firing.end() || r != box.resolved.end())) {
    auto& it = (r == box.resolved.end() || (f != box.firing.end() && f->first < r->first)) ? f : r;
    const Entry& e = box.entries.at(it->second);
    batch.sent.emplace_back(it->second, e.seq);
    batch.alerts.push_back(e.alert);
    ++it;
  }
  return batch;
}

void AlertmanagerNotifier::finishLocked(UrlState& u, const Batch& batch,
                                        const TransportResult& result) {
  if (result.cancelled) return;  // shutdown or removal: neither success nor failure
  const WallTime now = clock_.now();
  const size_t n = batch.sent.size();
  const bool success = result.status >= 200 && result.status < 300;
  const bool rejected = !success && !isRetryable(result.status) && n > 0;
  if (success || rejected) {
    size_t removed = 0;
    for (const auto& [key, seq] : batch.sent) {
      auto it = u.outbox.entries.find(key);
      // A newer notification of the same alert arrived during the POST: it stays queued.
      if (it != u.outbox.entries.end() && it->second.seq == seq) {
        eraseLocked(u.outbox, key);
        ++removed;
      }
    }
    if (removed > 0) markChangedLocked(false);
  }
  if (success) {
    sent_ += n;
    if (u.consecutive_failures > 0) {
      spdlog::info("alertmanager {}: reachable again after {} failed attempts", u.url,
                   u.consecutive_failures);
    }
    u.up = true;
    u.last_success = now;
    u.backoff = Duration(0);
    u.consecutive_failures = 0;
    u.next_attempt = now;
    return;
  }
  u.up = false;
  if (rejected) {
    // The payload is wrong; retrying it would fail forever and hold up the alerts behind it.
    dropped_rejected_ += n;
    u.next_attempt = now;
    spdlog::error("alertmanager {}: rejected {} alerts with HTTP {} (dropped): {}", u.url, n,
                  result.status, shortDetail(result.detail));
    return;
  }
  failed_ += n;
  ++u.consecutive_failures;
  u.backoff = u.backoff.count() == 0
                  ? options_.initial_backoff
                  : std::min(options_.max_backoff, Duration(u.backoff.count() * 2));
  u.next_attempt = now + u.backoff;
  const std::string why = result.status == 0 ? shortDetail(result.detail)
                                             : "HTTP " + std::to_string(result.status) + ": " +
                                                   shortDetail(result.detail);
  if (n > 0) {
    spdlog::warn("alertmanager {}: POST failed ({}); {} notifications wait, retry in {} ms", u.url,
                 why, u.outbox.entries.size(), u.backoff.count());
  } else if (u.consecutive_failures == 1 || u.consecutive_failures % 20 == 0) {
    // Idle probes fail every probe_interval while it is down: log the start, then rarely.
    spdlog::warn("alertmanager {}: not reachable ({}), {} probes in a row; nothing waits", u.url,
                 why, u.consecutive_failures);
  }
}

void AlertmanagerNotifier::clockStepLocked(UrlState& u, WallTime now) {
  // The wall clock stepped back (NTP, an operator): gates set before the step would hold
  // deliveries and probes back by the size of the step. The current wait restarts from now.
  if (u.next_attempt > now + u.backoff) u.next_attempt = now + u.backoff;
  if (u.last_attempt > now) u.last_attempt = now;
}

bool AlertmanagerNotifier::deliverOnce(UrlState& u) {
  clockStepLocked(u, clock_.now());
  const std::optional<WallTime> due = nextDueLocked(u);
  if (!due || *due > clock_.now()) return false;
  Batch batch = takeBatchLocked(u);
  u.attempted = true;
  u.last_attempt = clock_.now();
  AlertTransport* transport = u.transport.get();
  mu_.unlock();
  std::vector<const AlertNotification*> ptrs;
  ptrs.reserve(batch.alerts.size());
  for (const auto& a : batch.alerts) ptrs.push_back(&a);
  const TransportResult result = transport->post(alertsPayload(ptrs));
  mu_.lock();
  finishLocked(u, batch, result);
  return true;
}

int AlertmanagerNotifier::deliverDue() {
  std::vector<std::shared_ptr<UrlState>> states;
  {
    MutexLock lock(mu_);
    if (stopped_) return 0;
    states = urls_;
  }
  int posts = 0;
  for (auto& u : states) {
    MutexLock lock(mu_);
    while (deliverOnce(*u)) {
      ++posts;
      if (!u->up || u->outbox.entries.empty()) break;  // failed, or probe/last batch done
    }
  }
  if (posts > 0) publishMetrics();
  return posts;
}

void AlertmanagerNotifier::deliveryLoop(std::stop_token stop, UrlState* u) {
  MutexLock lock(mu_);
  while (!stop.stop_requested()) {
    u->wake = false;
    const WallTime now = clock_.now();
    clockStepLocked(*u, now);
    const std::optional<WallTime> due = nextDueLocked(*u);
    if (!due) {
      cv_.wait(lock, stop, [u] { return u->wake; });
      continue;
    }
    if (*due > now) {
      cv_.wait_for(lock, stop, *due - now, [u] { return u->wake; });
      continue;
    }
    deliverOnce(*u);
    lock.unlock();
    cv_.notify_all();  // the housekeeper saves removals
    publishMetrics();
    lock.lock();
  }
}

// ---- persistence and metrics -------------------------------------------------------------

void AlertmanagerNotifier::housekeepingLoop(std::stop_token stop) {
  SteadyClock::time_point last_save = SteadyClock::now() - options_.save_debounce;
  SteadyClock::time_point next_metrics = SteadyClock::now() + options_.metrics_refresh;
  MutexLock lock(mu_);
  while (!stop.stop_requested()) {
    auto save_due = [&]() REQUIRES(mu_) {
      return change_gen_ != saved_gen_ &&
             (urgent_save_ || SteadyClock::now() >= last_save + options_.save_debounce);
    };
    SteadyClock::time_point deadline = next_metrics;
    if (change_gen_ != saved_gen_) {
      deadline = std::min(deadline, last_save + options_.save_debounce);
    }
    cv_.wait_until(lock, stop, deadline, save_due);
    if (stop.stop_requested()) break;
    const bool save = save_due();
    const bool metrics = SteadyClock::now() >= next_metrics;
    lock.unlock();
    if (save) {
      (void)flush();  // a failure is logged there and retried after the debounce period
      last_save = SteadyClock::now();
    }
    if (metrics) {
      publishMetrics();
      next_metrics = SteadyClock::now() + options_.metrics_refresh;
    }
    lock.lock();
  }
}

Status AlertmanagerNotifier::flush() {
  if (state_path_.empty()) return okStatus();
  MutexLock save_lock(save_mu_);
  uint64_t gen = 0;
  std::vector<std::pair<std::string, std::vector<AlertNotification>>> copy;
  {
    MutexLock lock(mu_);
    gen = change_gen_;
    if (gen == saved_gen_) return okStatus();
    urgent_save_ = false;
    for (const auto& u : urls_) {
      std::vector<const Entry*> entries;
      for (const auto& [key, e] : u->outbox.entries) entries.push_back(&e);
      std::sort(entries.begin(), entries.end(),
                [](const Entry* a, const Entry* b) { return a->seq < b->seq; });
      auto& out = copy.emplace_back(u->url, std::vector<AlertNotification>{}).second;
      out.reserve(entries.size());
      for (const Entry* e : entries) out.push_back(e->alert);
    }
  }
  // Serialised outside mu_: send() and the delivery threads never wait for JSON or the disk.
  Json outboxes = Json::array();
  for (const auto& [url, alerts] : copy) {
    Json list = Json::array();
    for (const auto& a : alerts) {
      list.push_back({{"labels", labelsJson(a.labels)},
                      {"annotations", labelsJson(a.annotations)},
                      {"starts_at_ns", toNanos(a.starts_at)},
                      {"ends_at_ns", toNanos(a.ends_at)},
                      {"generator_url", a.generator_url},
                      {"resolved", a.resolved}});
    }
    outboxes.push_back({{"url", url}, {"alerts", std::move(list)}});
  }
  const Json state{{"version", kStateVersion}, {"outboxes", std::move(outboxes)}};
  Status st = ensureDirectory(options_.state_dir);
  if (st.ok()) st = writeFileAtomic(state_path_, dumpJson(state) + "\n");
  if (!st.ok()) {
    // Kept pending: the housekeeper tries again after the debounce period.
    if (st.message() != last_save_error_) {
      spdlog::error("alertmanager outbox: cannot write {}: {}", state_path_, st.toString());
      last_save_error_ = st.message();
    }
    return st;
  }
  if (!last_save_error_.empty()) {
    spdlog::info("alertmanager outbox: {} written again", state_path_);
    last_save_error_.clear();
  }
  MutexLock lock(mu_);
  saved_gen_ = gen;
  return okStatus();
}

void AlertmanagerNotifier::load() {
  if (state_path_.empty()) return;
  Result<std::string> text = readSmallFile(state_path_);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return;  // first start
    spdlog::error("alertmanager outbox: cannot read {}: {}; starting with an empty outbox",
                  state_path_, text.status().toString());
    return;
  }
  // Parsed completely before anything is queued: a file that is corrupt half-way through
  // loads nothing rather than half an outbox.
  std::vector<std::pair<std::string, std::vector<AlertNotification>>> loaded;
  try {
    const Json state = Json::parse(*text);
    if (state.at("version").get<int>() != kStateVersion) {
      throw std::runtime_error("unknown version " + state.at("version").dump());
    }
    for (const Json& box : state.at("outboxes")) {
      auto& [url, alerts] =
          loaded.emplace_back(box.at("url").get<std::string>(), std::vector<AlertNotification>{});
      for (const Json& j : box.at("alerts")) {
        AlertNotification a;
        a.labels = labelsFromJson(j.at("labels"));
        a.annotations = labelsFromJson(j.at("annotations"));
        a.starts_at = fromNanos(j.at("starts_at_ns").get<int64_t>());
        a.ends_at = fromNanos(j.at("ends_at_ns").get<int64_t>());
        a.generator_url = j.at("generator_url").get<std::string>();
        a.resolved = j.at("resolved").get<bool>();
        alerts.push_back(std::move(a));
      }
    }
  } catch (const std::exception& e) {
    const auto aside = moveAside(state_path_);
    spdlog::error("alertmanager outbox: {} is corrupt ({}); moved to {}, starting empty",
                  state_path_, e.what(),
                  aside.ok() ? aside.value() : "(not moved: " + aside.status().message() + ")");
    return;
  }
  MutexLock lock(mu_);
  bool changed = false;
  for (auto& [url, alerts] : loaded) {
    // By name, not [&]: clang before 16 cannot capture a structured binding.
    const std::string& wanted = url;
    auto it =
        std::find_if(urls_.begin(), urls_.end(), [&](const auto& u) { return u->url == wanted; });
    if (it == urls_.end()) {
      if (!alerts.empty()) {
        spdlog::warn(
            "alertmanager outbox: discarding {} notifications for {} (no longer in "
            "alertmanager.urls)",
            alerts.size(), url);
      }
      changed = true;
      continue;
    }
    for (const auto& a : alerts) upsertLocked((*it)->outbox, labelKey(a.labels), a, next_seq_++);
    if (evictLocked((*it)->outbox) > 0) changed = true;
    if (!alerts.empty()) {
      spdlog::info("alertmanager {}: {} undelivered notifications loaded from {}", url,
                   (*it)->outbox.entries.size(), state_path_);
    }
  }
  if (changed) markChangedLocked(false);
}

void AlertmanagerNotifier::publishMetrics() {
  if (options_.metrics_store == nullptr) return;
  MutexLock metrics_lock(metrics_mu_);
  SampleBatch b;
  {
    MutexLock lock(mu_);
    const char* kNotifications = "dbpulse_alertmanager_notifications_total";
    const char* kNotificationsHelp =
        "Alert notifications by outcome, counted once per Alertmanager URL: sent (accepted), "
        "failed (a POST that will be retried), dropped (outbox full or rejected).";
    b.counter(kNotifications, kNotificationsHelp, {{"result", "sent"}}, static_cast<double>(sent_));
    b.counter(kNotifications, kNotificationsHelp, {{"result", "failed"}},
              static_cast<double>(failed_));
    b.counter(kNotifications, kNotificationsHelp, {{"result", "dropped"}},
              static_cast<double>(dropped_full_ + dropped_rejected_));
    const char* kDropped = "dbpulse_alertmanager_dropped_total";
    const char* kDroppedHelp =
        "Alert notifications given up: outbox_full (oldest resolved first), rejected (HTTP 4xx).";
    b.counter(kDropped, kDroppedHelp, {{"reason", "outbox_full"}},
              static_cast<double>(dropped_full_));
    b.counter(kDropped, kDroppedHelp, {{"reason", "rejected"}},
              static_cast<double>(dropped_rejected_));
    for (const auto& u : urls_) {
      b.gauge("dbpulse_alertmanager_outbox_size",
              "Notifications waiting for this Alertmanager to accept them.", {{"url", u->url}},
              static_cast<double>(u->outbox.entries.size()));
      b.gauge("dbpulse_alertmanager_up", "1 when the last POST to this Alertmanager got a 2xx.",
              {{"url", u->url}}, u->up ? 1 : 0);
      b.gauge("dbpulse_alertmanager_last_success_timestamp_seconds",
              "Unix time of the last 2xx from this Alertmanager; 0 = never.", {{"url", u->url}},
              u->last_success.time_since_epoch().count() == 0
                  ? 0
                  : static_cast<double>(toMillis(u->last_success)) / 1000.0);
    }
  }
  options_.metrics_store->write(kMetricsSource, b, 4 * options_.metrics_refresh);
}

// ---- lifecycle ---------------------------------------------------------------------------

void AlertmanagerNotifier::setUrls(const std::vector<std::string>& urls) {
  const std::vector<std::string> wanted = dedup(urls);
  std::vector<std::shared_ptr<UrlState>> removed;
  {
    MutexLock lock(mu_);
    std::vector<std::shared_ptr<UrlState>> next;
    for (const auto& url : wanted) {
      auto it =
          std::find_if(urls_.begin(), urls_.end(), [&](const auto& u) { return u->url == url; });
      if (it != urls_.end()) {
        next.push_back(*it);
        continue;
      }
      auto u = makeUrlState(url);
      if (options_.background && !stopped_) startThreadLocked(*u);
      spdlog::info("alertmanager {}: added", url);
      next.push_back(std::move(u));
    }
    for (auto& u : urls_) {
      if (std::find(wanted.begin(), wanted.end(), u->url) != wanted.end()) continue;
      spdlog::info("alertmanager {}: removed; {} undelivered notifications discarded", u->url,
                   u->outbox.entries.size());
      u->thread.request_stop();
      u->transport->cancel();
      removed.push_back(u);
    }
    if (next.size() != urls_.size() || !removed.empty()) markChangedLocked(false);
    urls_ = std::move(next);
  }
  cv_.notify_all();
  for (auto& u : removed) {
    if (u->thread.joinable()) u->thread.join();
  }
  if (!removed.empty() && options_.metrics_store != nullptr) {
    options_.metrics_store->dropSource(kMetricsSource);
  }
  publishMetrics();
}

void AlertmanagerNotifier::shutdown() {
  std::vector<std::shared_ptr<UrlState>> states;
  {
    MutexLock lock(mu_);
    stopped_ = true;
    states = urls_;
    for (auto& u : states) {
      u->thread.request_stop();
      u->transport->cancel();
    }
  }
  housekeeper_.request_stop();
  cv_.notify_all();
  for (auto& u : states) {
    if (u->thread.joinable()) u->thread.join();
  }
  if (housekeeper_.joinable()) housekeeper_.join();
  (void)flush();  // a failure is logged there; the outbox stays in memory until exit
}

AlertmanagerNotifier::Stats AlertmanagerNotifier::stats() const {
  MutexLock lock(mu_);
  Stats s;
  s.sent = sent_;
  s.failed = failed_;
  s.dropped_full = dropped_full_;
  s.dropped_rejected = dropped_rejected_;
  for (const auto& u : urls_) {
    s.urls.push_back(UrlStats{u->url, u->outbox.entries.size(), u->up, u->last_success,
                              u->next_attempt, u->backoff, u->consecutive_failures});
  }
  return s;
}

}  // namespace dbpulse::exporters
