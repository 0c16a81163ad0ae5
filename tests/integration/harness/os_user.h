#pragma once
// Looking up an OS account, for running servers that refuse root (PostgreSQL) as
// their own user when the tests run as root.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace dbpulse::testing {

struct OsUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, including gid
  std::string home;
};

// nullopt when the account does not exist.
std::optional<OsUser> lookupOsUser(const std::string& name);

bool runningAsRoot();

}  // namespace dbpulse::testing
