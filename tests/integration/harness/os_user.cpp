#include "integration/harness/os_user.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

namespace dbpulse::testing {

std::optional<OsUser> lookupOsUser(const std::string& name) {
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return std::nullopt;
  }
  OsUser user;
  user.name = name;
  user.uid = pw.pw_uid;
  user.gid = pw.pw_gid;
  user.home = pw.pw_dir != nullptr ? pw.pw_dir : "/";
  int count = 32;
  user.groups.resize(static_cast<std::size_t>(count));
  if (::getgrouplist(name.c_str(), pw.pw_gid, user.groups.data(), &count) < 0) {
    user.groups.resize(static_cast<std::size_t>(count));
    ::getgrouplist(name.c_str(), pw.pw_gid, user.groups.data(), &count);
  }
  user.groups.resize(static_cast<std::size_t>(count));
  return user;
}

bool runningAsRoot() { return ::geteuid() == 0; }

}  // namespace dbpulse::testing
