// libFuzzer target: the redis collector's pure parse functions on what a Redis server (or
// something pretending to be one) answers: INFO text, CLIENT LIST text and SLOWLOG GET
// replies. Input layout: byte 0 = CONFIG GET databases (0..64, as the collector caps it),
// byte 1 bit 0 = "Redis restarted", then the payload. The payload goes to parseRedisInfo /
// redisInfoToSamples / keyspaceCounters and to summariseClientList as text, and, decoded as
// RESP2 (what hiredis would hand over: "*2\r\n$3\r\nfoo\r\n:5\r\n..."), to the slowlog
// functions, folded twice as two collector runs do. Checks: sample names are non-empty,
// the client and slowlog summaries stay within their caps, ids only move forward.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "collectors/redis/redis_parse.h"

namespace {

using dbpulse::SampleBatch;
using dbpulse::collectors::RedisReply;

void check(bool ok) {
  if (!ok) std::abort();
}

// Redis answers are capped by the transport, not the parsers; 1 MiB covers a big INFO or
// CLIENT LIST and keeps runs short.
constexpr size_t kMaxInput = 1 << 20;
constexpr size_t kMaxClientNames = 5;
constexpr size_t kMaxSlowCommands = 4;
// hiredis refuses replies nested deeper than 7 levels.
constexpr int kMaxDepth = 7;

// A RESP2 decoder just good enough to turn fuzz bytes into the RedisReply trees hiredis
// would produce. nullopt when the bytes are not a reply.
class Resp {
 public:
  explicit Resp(std::string_view in) : in_(in) {}

  std::optional<RedisReply> next(int depth = 0) {
    if (depth > kMaxDepth || in_.empty()) return std::nullopt;
    const char kind = in_.front();
    in_.remove_prefix(1);
    auto line = readLine();
    if (!line) return std::nullopt;
    switch (kind) {
      case '+':
        return RedisReply::status(std::string(*line));
      case '-':
        return RedisReply::error(std::string(*line));
      case ':': {
        auto n = toInt(*line);
        if (!n) return std::nullopt;
        return RedisReply::integerReply(*n);
      }
      case '$': {
        auto n = toInt(*line);
        if (!n) return std::nullopt;
        if (*n < 0) return RedisReply{};
        if (static_cast<uint64_t>(*n) + 2 > in_.size()) return std::nullopt;
        std::string s(in_.substr(0, static_cast<size_t>(*n)));
        in_.remove_prefix(static_cast<size_t>(*n) + 2);
        return RedisReply::string(std::move(s));
      }
      case '*': {
        auto n = toInt(*line);
        if (!n) return std::nullopt;
        if (*n < 0) return RedisReply{};
        if (static_cast<uint64_t>(*n) > in_.size()) return std::nullopt;  // each needs a byte
        std::vector<RedisReply> elements;
        for (int64_t i = 0; i < *n; ++i) {
          auto e = next(depth + 1);
          if (!e) return std::nullopt;
          elements.push_back(std::move(*e));
        }
        return RedisReply::array(std::move(elements));
      }
      default:
        return std::nullopt;
    }
  }

 private:
  std::optional<std::string_view> readLine() {
    const size_t end = in_.find("\r\n");
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view line = in_.substr(0, end);
    in_.remove_prefix(end + 2);
    return line;
  }
  static std::optional<int64_t> toInt(std::string_view s) {
    if (s.empty() || s.size() > 18) return std::nullopt;
    bool neg = s.front() == '-';
    if (neg) s.remove_prefix(1);
    if (s.empty()) return std::nullopt;
    int64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    return neg ? -v : v;
  }
  std::string_view in_;
};

void checkBatch(const SampleBatch& b) {
  for (const auto& s : b.samples()) check(!s.name.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dbpulse::collectors;
  if (size < 2 || size > kMaxInput) return -1;
  const int databases = data[0] % 65;
  const bool restarted = (data[1] & 1) != 0;
  const std::string_view payload(reinterpret_cast<const char*>(data + 2), size - 2);

  const RedisInfo info = parseRedisInfo(payload);
  SampleBatch info_batch;
  redisInfoToSamples(info, databases, info_batch);
  checkBatch(info_batch);
  if (auto counters = keyspaceCounters(info)) {
    (void)cacheHitRatio(std::nullopt, *counters);
    (void)cacheHitRatio(KeyspaceCounters{counters->run_id, 1, 1}, *counters);
    (void)cacheHitRatio(*counters, *counters);
  }

  SampleBatch clients;
  summariseClientList(payload, kMaxClientNames, clients);
  checkBatch(clients);
  std::set<std::string> names;
  for (const auto& s : clients.samples()) {
    const auto name = s.labels.get("name");
    if (!name.empty()) names.insert(std::string(name));
  }
  check(names.size() <= kMaxClientNames + 2);  // + "other" and "unnamed"

  Resp resp(payload);
  SlowlogState state;
  for (int run = 0; run < 2; ++run) {
    auto reply = resp.next();
    if (!reply) break;
    SampleBatch b;
    newestSlowlogToSamples(*reply, b);
    (void)newestSlowlogId(*reply);
    const auto before = state.last_id;
    foldSlowlog(*reply, restarted && run == 1, kMaxSlowCommands, state);
    if (before && state.last_id && !restarted) check(*state.last_id >= *before);
    slowlogToSamples(state, b);
    checkBatch(b);
    check(state.by_command.size() <= kMaxSlowCommands + 1);  // + "other"
  }
  return 0;
}
