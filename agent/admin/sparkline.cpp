#include "agent/admin/sparkline.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace dbpulse::admin {

std::string htmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string sparklineSvg(const std::vector<Point>& points, const SparklineOptions& o,
                         const std::string& title) {
  std::vector<Point> shown;
  for (const Point& p : points) {
    if (std::isfinite(p.value) && p.t_ms >= o.from_ms && p.t_ms <= o.to_ms) shown.push_back(p);
  }
  const std::string head = "<svg class=\"spark" + std::string(shown.size() < 2 ? " empty" : "") +
                           "\" width=\"" + std::to_string(o.width) + "\" height=\"" +
                           std::to_string(o.height) + "\" viewBox=\"0 0 " +
                           std::to_string(o.width) + " " + std::to_string(o.height) +
                           "\" role=\"img\"><title>" + htmlEscape(title) + "</title>";
  if (shown.size() < 2) return head + "</svg>";
  const auto [lo_it, hi_it] = std::minmax_element(
      shown.begin(), shown.end(), [](const Point& a, const Point& b) { return a.value < b.value; });
  const double lo = lo_it->value, hi = hi_it->value;
  const double span_t = std::max<double>(1, static_cast<double>(o.to_ms - o.from_ms));
  // One pixel of margin so the stroke is not clipped at the extremes.
  const double w = o.width, h = o.height, top = 1, usable = std::max(1.0, h - 2);
  std::string pts;
  char buf[48];
  for (const Point& p : shown) {
    const double x = static_cast<double>(p.t_ms - o.from_ms) / span_t * w;
    const double y = hi > lo ? top + (hi - p.value) / (hi - lo) * usable : h / 2;
    std::snprintf(buf, sizeof buf, "%s%.1f,%.1f", pts.empty() ? "" : " ", x, y);
    pts += buf;
  }
  return head + "<polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" points=\"" +
         pts + "\"/></svg>";
}

}  // namespace dbpulse::admin
