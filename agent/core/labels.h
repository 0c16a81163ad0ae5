#pragma once
// Label sets for series. A Labels value is kept sorted by name with unique
// names, so equal sets compare equal and hash/serialise the same way.

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dbpulse {

struct Label {
  std::string name;
  std::string value;
  bool operator==(const Label&) const = default;
  // clang-tidy 14 reads the literal 0 the defaulted <=> compares each member's ordering
  // with as a null pointer (a false positive).
  auto operator<=>(const Label&) const = default;  // NOLINT(modernize-use-nullptr)
};

class Labels {
 public:
  Labels() = default;
  Labels(std::initializer_list<std::pair<std::string_view, std::string_view>> init);

  // Sets (or replaces) one label, keeping the order.
  void set(std::string_view name, std::string_view value);
  // Removes one label if present.
  void erase(std::string_view name);
  // Room for `n` labels without reallocating (building label sets in hot loops).
  void reserve(size_t n) { items_.reserve(n); }
  // Empty string when absent (Prometheus treats an empty label as absent).
  std::string_view get(std::string_view name) const;
  const std::vector<Label>& items() const { return items_; }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  bool operator==(const Labels&) const = default;

  // Appends a canonical, unambiguous encoding (length-prefixed names and values), used as a
  // map key.
  void appendKey(std::string& out) const;

 private:
  std::vector<Label> items_;
};

}  // namespace dbpulse
