#pragma once
// A query result as plain strings, so collectors' parse functions can be
// unit-tested with canned rows and never see libpqxx types.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dbpulse::collectors {

struct PgRows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;

  // Column index by name, or -1.
  int column(std::string_view name) const {
    for (size_t i = 0; i < columns.size(); ++i) {
      if (columns[i] == name) return static_cast<int>(i);
    }
    return -1;
  }
};

}  // namespace dbpulse::collectors
