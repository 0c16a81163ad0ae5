#include "agent/core/labels.h"

#include <algorithm>

namespace dbpulse {

Labels::Labels(std::initializer_list<std::pair<std::string_view, std::string_view>> init) {
  for (const auto& [name, value] : init) set(name, value);
}

void Labels::set(std::string_view name, std::string_view value) {
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  if (it != items_.end() && it->name == name) {
    it->value = value;
  } else {
    items_.insert(it, Label{std::string(name), std::string(value)});
  }
}

void Labels::erase(std::string_view name) {
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  if (it != items_.end() && it->name == name) items_.erase(it);
}

std::string_view Labels::get(std::string_view name) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  if (it != items_.end() && it->name == name) return it->value;
  return {};
}

void Labels::appendKey(std::string& out) const {
  // Length-prefixed, so no label value (which may hold any byte) can mimic a separator
  // and make two different label sets share a key.
  for (const auto& l : items_) {
    for (const std::string* part : {&l.name, &l.value}) {
      out += '\x1f';
      out += std::to_string(part->size());
      out += ':';
      out += *part;
    }
  }
}

}  // namespace dbpulse
