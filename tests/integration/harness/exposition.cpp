#include "integration/harness/exposition.h"

#include <cstdlib>
#include <string>

namespace dbpulse::testing {

namespace {

bool isNameChar(char c, bool first) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  return alpha || (!first && c >= '0' && c <= '9');
}

void skipSpaces(std::string_view line, std::size_t& pos) {
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
}

std::string readName(std::string_view line, std::size_t& pos) {
  const std::size_t begin = pos;
  while (pos < line.size() && isNameChar(line[pos], pos == begin)) ++pos;
  return std::string(line.substr(begin, pos - begin));
}

// Parses `{a="x",b="y"}` starting at '{'; false when malformed.
bool readLabels(std::string_view line, std::size_t& pos, LabelMap& labels) {
  ++pos;  // '{'
  while (true) {
    skipSpaces(line, pos);
    if (pos < line.size() && line[pos] == '}') {
      ++pos;
      return true;
    }
    const std::string key = readName(line, pos);
    skipSpaces(line, pos);
    if (key.empty() || pos >= line.size() || line[pos] != '=') return false;
    ++pos;
    skipSpaces(line, pos);
    if (pos >= line.size() || line[pos] != '"') return false;
    ++pos;
    std::string value;
    while (pos < line.size() && line[pos] != '"') {
      if (line[pos] == '\\' && pos + 1 < line.size()) {
        ++pos;
        value += line[pos] == 'n' ? '\n' : line[pos];
      } else {
        value += line[pos];
      }
      ++pos;
    }
    if (pos >= line.size()) return false;
    ++pos;  // closing quote
    labels[key] = std::move(value);
    skipSpaces(line, pos);
    if (pos < line.size() && line[pos] == ',') ++pos;
  }
}

std::optional<ExpositionSample> parseLine(std::string_view line) {
  std::size_t pos = 0;
  skipSpaces(line, pos);
  if (pos >= line.size() || line[pos] == '#') return std::nullopt;
  ExpositionSample sample;
  sample.name = readName(line, pos);
  if (sample.name.empty()) return std::nullopt;
  if (pos < line.size() && line[pos] == '{' && !readLabels(line, pos, sample.labels)) {
    return std::nullopt;
  }
  skipSpaces(line, pos);
  const std::size_t end = line.find_first_of(" \t", pos);
  const std::string value(line.substr(pos, end == std::string_view::npos ? end : end - pos));
  if (value.empty()) return std::nullopt;
  char* parsed_end = nullptr;
  sample.value = std::strtod(value.c_str(), &parsed_end);
  if (parsed_end != value.c_str() + value.size()) return std::nullopt;
  return sample;
}

bool matches(const ExpositionSample& sample, const LabelMap& matchers) {
  for (const auto& [key, value] : matchers) {
    const auto it = sample.labels.find(key);
    if (it == sample.labels.end() || it->second != value) return false;
  }
  return true;
}

}  // namespace

std::vector<ExpositionSample> parseExposition(std::string_view text) {
  std::vector<ExpositionSample> samples;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (std::optional<ExpositionSample> sample = parseLine(line)) {
      samples.push_back(std::move(*sample));
    }
    start = end + 1;
  }
  return samples;
}

std::vector<ExpositionSample> findSamples(std::string_view text, std::string_view name,
                                          const LabelMap& matchers) {
  std::vector<ExpositionSample> found;
  for (ExpositionSample& sample : parseExposition(text)) {
    if (sample.name == name && matches(sample, matchers)) found.push_back(std::move(sample));
  }
  return found;
}

std::optional<double> sampleValue(std::string_view text, std::string_view name,
                                  const LabelMap& matchers) {
  const std::vector<ExpositionSample> found = findSamples(text, name, matchers);
  if (found.empty()) return std::nullopt;
  return found.front().value;
}

}  // namespace dbpulse::testing
