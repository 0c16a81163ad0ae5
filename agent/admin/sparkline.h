#pragma once
// Small inline SVG line charts for the status page (no script, no external asset).

#include <cstdint>
#include <string>
#include <vector>

#include "agent/core/sample_store.h"

namespace dbpulse::admin {

struct SparklineOptions {
  int width = 160, height = 32;    // pixels (the SVG's viewBox)
  int64_t from_ms = 0, to_ms = 0;  // the time axis; points outside are left out
};

// An <svg class="spark"> with one <polyline> through `points` (oldest first): time on x
// (from_ms at the left edge, to_ms at the right), value on y scaled between the points'
// minimum and maximum (a flat line through the middle when they are equal; NaN/Inf points
// skipped). Fewer than two points: an <svg class="spark empty"> without a line.
// `title` becomes the SVG's <title> (escaped), read by screen readers and shown on hover.
std::string sparklineSvg(const std::vector<Point>& points, const SparklineOptions& options,
                         const std::string& title);

// `s` with & < > " ' replaced by entities: safe in HTML text and in quoted attributes.
std::string htmlEscape(const std::string& s);

}  // namespace dbpulse::admin
