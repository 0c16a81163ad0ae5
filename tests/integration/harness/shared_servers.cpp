#include "integration/harness/shared_servers.h"

#include <memory>
#include <optional>
#include <string>

#include "integration/harness/harness_error.h"

namespace dbpulse::testing {

namespace {

// Held here rather than in function-local statics so that stopSharedServers() (and not
// static destruction, after gtest has finished reporting) ends them.
template <typename Server>
struct Slot {
  std::unique_ptr<Server> server;
  std::optional<std::string> start_error;
};

Slot<PgServer>& pgSlot() {
  static Slot<PgServer> slot;
  return slot;
}

Slot<RedisServer>& redisSlot() {
  static Slot<RedisServer> slot;
  return slot;
}

template <typename Server>
Server& getOrStart(Slot<Server>& slot, const char* what) {
  if (slot.start_error) {
    throw HarnessError(std::string("shared ") + what +
                       " failed to start earlier: " + *slot.start_error);
  }
  try {
    if (!slot.server) {
      slot.server = std::make_unique<Server>();
    } else if (!slot.server->running()) {
      slot.server->start();
    }
  } catch (const std::exception& e) {
    slot.start_error = e.what();
    slot.server.reset();
    throw;
  }
  return *slot.server;
}

}  // namespace

PgServer& sharedPostgres() { return getOrStart(pgSlot(), "postgres"); }

RedisServer& sharedRedis() { return getOrStart(redisSlot(), "redis-server"); }

void stopSharedServers() {
  pgSlot().server.reset();
  redisSlot().server.reset();
}

}  // namespace dbpulse::testing
