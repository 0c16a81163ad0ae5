#include "collectors/redis/redis_collector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <exception>
#include <limits>
#include <vector>

namespace dbpulse::collectors {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kSlowlogMargin = 16;

void append(const SampleBatch& from, SampleBatch& to) {
  for (const auto& [name, info] : from.families()) {
    to.describe(name, info.type, info.help, info.exported);
  }
  for (const auto& s : from.samples()) to.add(s.name, s.labels, s.value);
}

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

RedisCollector::RedisCollector(RedisCollectorOptions options)
    : options_(std::move(options)), session_(std::make_unique<RedisSession>(options_.session)) {}

RedisCollector::~RedisCollector() = default;

void RedisCollector::cancel() {
  cancelled_ = true;
  session_->cancel();
}

Result<RedisReply> RedisCollector::call(const CollectContext& ctx,
                                        const std::vector<std::string>& args) {
  if (cancelled_ || ctx.stop.stop_requested()) {
    return cancelled("redis " + session_->address() + ": cancelled");
  }
  return session_->command(args, ctx.deadline);
}

void RedisCollector::noteRefused(const std::string& command, const std::string& error) {
  if (refused_.insert(command).second) {
    spdlog::warn("collector redis: {} refused by {} ({}); its series are skipped", command,
                 session_->address(), error);
  }
}

Status RedisCollector::collect(const CollectContext& ctx, SampleBatch& out) {
  cancelled_ = false;
  SampleBatch run;
  Status status;
  try {
    status = collectRun(ctx, run);
  } catch (const std::exception& e) {
    status = internalError("redis " + session_->address() + ": " + e.what());
  }
  out.gauge("redis_up", "1 when the last run of the redis collector reached Redis.", {},
            status.ok() ? 1 : 0);
  if (status.ok()) {
    append(run, out);
  } else {
    out.gauge("dbpulse_redis_cache_hit_ratio",
              "Share of keyspace lookups that hit, between the previous run and this one "
              "(NaN: no lookups, no previous run, or Redis unreachable).",
              {}, kNaN);
  }
  return status;
}

Status RedisCollector::collectRun(const CollectContext& ctx, SampleBatch& run) {
  // INFO first: it is the one command without which the run is worthless.
  auto info_reply = call(ctx, {"INFO", "all"});
  if (!info_reply.ok()) return info_reply.status();
  if (!info_reply->isText()) {
    if (info_reply->isError()) {
      return failedPrecondition("privilege_missing",
                                "redis " + session_->address() +
                                    ": INFO refused: " + info_reply->str +
                                    " (allow the INFO command for dbpulse's user)");
    }
    return internalError("redis " + session_->address() + ": INFO: unexpected reply type");
  }
  const RedisInfo info = parseRedisInfo(info_reply->str);
  const std::string run_id(info.get("run_id"));
  const bool restarted = !previous_run_id_.empty() && run_id != previous_run_id_;
  previous_run_id_ = run_id;

  if (databases_ < 0) {
    auto reply = call(ctx, {"CONFIG", "GET", "databases"});
    if (!reply.ok()) return reply.status();
    databases_ = 0;
    if (reply->isError()) {
      noteRefused("CONFIG GET", reply->str);
    } else if (reply->type == RedisReply::Type::kArray && reply->elements.size() == 2 &&
               reply->elements[1].isText()) {
      const std::string& v = reply->elements[1].str;
      int n = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec == std::errc() && ptr == v.data() + v.size() && n > 0) databases_ = std::min(n, 64);
    }
  }
  if (io_threads_ < 0) {
    // redis_exporter's redis_config_io_threads; a setting that cannot change at run time.
    auto reply = call(ctx, {"CONFIG", "GET", "io-threads"});
    if (!reply.ok()) return reply.status();
    io_threads_ = 0;
    if (reply->type == RedisReply::Type::kArray && reply->elements.size() == 2 &&
        reply->elements[1].isText()) {
      const std::string& v = reply->elements[1].str;
      int n = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec == std::errc() && ptr == v.data() + v.size() && n > 0) io_threads_ = n;
    }
  }
  redisInfoToSamples(info, databases_, run);
  if (io_threads_ > 0) {
    run.gauge("redis_config_io_threads", "The io-threads setting: threads doing client I/O.", {},
              io_threads_);
  }

  double ratio = kNaN;
  if (auto counters = keyspaceCounters(info)) {
    ratio = cacheHitRatio(previous_keyspace_, *counters);
    previous_keyspace_ = std::move(counters);
  }
  run.gauge("dbpulse_redis_cache_hit_ratio",
            "Share of keyspace lookups that hit, between the previous run and this one "
            "(NaN: no lookups, no previous run, or Redis unreachable).",
            {}, ratio);

  // A few PINGs: one round trip is noise on a shared host; the median is the figure.
  std::vector<double> pings;
  for (int i = 0; i < std::max(options_.ping_samples, 1); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto reply = call(ctx, {"PING"});
    const auto took = std::chrono::steady_clock::now() - t0;
    if (!reply.ok()) return reply.status();
    pings.push_back(seconds(took));
  }
  std::sort(pings.begin(), pings.end());
  run.gauge("dbpulse_redis_ping_seconds",
            "Median round-trip time of PING from dbpulse to Redis over this run's samples.", {},
            pings[pings.size() / 2]);
  run.gauge("dbpulse_redis_ping_max_seconds",
            "Slowest PING round trip from dbpulse to Redis in this run.", {}, pings.back());

  auto latency = call(ctx, {"LATENCY", "LATEST"});
  if (!latency.ok()) return latency.status();
  if (latency->isError()) {
    noteRefused("LATENCY", latency->str);
  } else {
    latencyLatestToSamples(*latency, run);
  }

  auto slowlog_len = call(ctx, {"SLOWLOG", "LEN"});
  if (!slowlog_len.ok()) return slowlog_len.status();
  if (slowlog_len->isError()) {
    noteRefused("SLOWLOG", slowlog_len->str);
  } else if (slowlog_len->type == RedisReply::Type::kInteger) {
    run.gauge("redis_slowlog_length", "Entries in Redis's slow log.", {},
              static_cast<double>(slowlog_len->integer));
    // The newest entry alone first: most runs find nothing new and fetch nothing more.
    auto newest = call(ctx, {"SLOWLOG", "GET", "1"});
    if (!newest.ok()) return newest.status();
    newestSlowlogToSamples(*newest, run);
    const int64_t newest_id = newestSlowlogId(*newest).value_or(-1);
    if (!slowlog_.last_id && !restarted) {
      foldSlowlog(*newest, false, options_.max_slow_commands, slowlog_);
    } else {
      const int64_t after = restarted ? -1 : *slowlog_.last_id;
      RedisReply entries = RedisReply::array({});
      if (newest_id > after) {
        // A little more than the gap: entries logged since GET 1 (that very command among
        // them, when slowlog-log-slower-than is tiny) would otherwise push the oldest wanted
        // entry out of the reply. Entries at or below `after` are skipped by foldSlowlog.
        const int64_t want =
            std::min<int64_t>(newest_id - after + kSlowlogMargin, options_.slowlog_fetch);
        auto fetched = call(ctx, {"SLOWLOG", "GET", std::to_string(want)});
        if (!fetched.ok()) return fetched.status();
        entries = std::move(*fetched);
      }
      foldSlowlog(entries, restarted, options_.max_slow_commands, slowlog_);
    }
    slowlogToSamples(slowlog_, run);
  }

  auto clients = call(ctx, {"CLIENT", "LIST"});
  if (!clients.ok()) return clients.status();
  if (clients->isError()) {
    noteRefused("CLIENT LIST", clients->str);
  } else if (clients->isText()) {
    summariseClientList(clients->str, options_.max_client_names, run);
  }
  return okStatus();
}

}  // namespace dbpulse::collectors
