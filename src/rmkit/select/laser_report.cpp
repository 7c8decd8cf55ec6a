// OUT/report.html of `laser train` (self-contained: inline SVG from eval/metrics/svg.h).
#include <map>

#include "rmkit/core/file_io.h"
#include "rmkit/core/metrics_log.h"
#include "rmkit/eval/metrics/svg.h"
#include "rmkit/select/laser_train.h"

namespace rmkit::select {

namespace svg = eval::svg;
using json = nlohmann::json;

void write_laser_report(const std::string& out_dir, const std::vector<std::string>& arm_names) {
  const auto records = MetricsLog::read(join_path(out_dir, "metrics.jsonl"));
  static const std::vector<std::string> colors = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                                  "#8c564b", "#e377c2", "#7f7f7f"};
  // share of each arm among the choices so far, per step
  std::vector<svg::Series> share(arm_names.size()), reward;
  std::vector<double> count(arm_names.size(), 0.0), reward_sum(arm_names.size(), 0.0), reward_n(arm_names.size(), 0.0);
  std::map<std::string, std::map<std::string, int>> by_category;  // category -> arm -> choices
  double total = 0;
  svg::Series loss{"DPO + NLL loss", {}, colors[0]}, margin{"reward margin", {}, colors[1]};
  for (size_t k = 0; k < arm_names.size(); ++k) share[k] = {arm_names[k], {}, colors[k % colors.size()]};
  for (const auto& r : records) {
    const double step = r.value("step", 0.0);
    const auto& arms = r["arms"];
    for (size_t b = 0; b < arms.size(); ++b) {
      const std::string a = arms[b].get<std::string>();
      for (size_t k = 0; k < arm_names.size(); ++k)
        if (arm_names[k] == a) {
          count[k] += 1;
          const json& nr = r["normalized_reward"];
          const json v = nr.is_array() ? nr[b] : nr;
          if (v.is_number() && (nr.is_array() || b == 0)) {
            reward_sum[k] += v.get<double>();
            reward_n[k] += 1;
          }
        }
      total += 1;
      if (r.contains("categories") && b < r["categories"].size()) ++by_category[r["categories"][b].get<std::string>()][a];
    }
    for (size_t k = 0; k < arm_names.size(); ++k) share[k].points.push_back({step, total > 0 ? count[k] / total : 0.0});
    if (r["loss"].is_number()) loss.points.push_back({step, r["loss"].get<double>()});
    if (r["reward_margin"].is_number()) margin.points.push_back({step, r["reward_margin"].get<double>()});
  }
  std::vector<svg::BarItem> bars;
  for (size_t k = 0; k < arm_names.size(); ++k)
    bars.push_back({arm_names[k], reward_n[k] > 0 ? reward_sum[k] / reward_n[k] : 0.0, std::nullopt, std::nullopt,
                    "pulled " + std::to_string(static_cast<int64_t>(count[k])) + "x"});
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>LASeR training</title><style>body{font-family:sans-serif;"
      "margin:24px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style>"
      "</head><body><h1>LASeR training</h1><p>" +
      std::to_string(records.size()) + " steps, " + std::to_string(static_cast<int64_t>(total)) + " arm choices.</p>";
  html += "<h2>Arm choices over time</h2>" + svg::line_chart(share, "share of choices so far", "step", "share");
  html += "<h2>Per-arm normalised bandit reward</h2>" + svg::bar_chart(bars, "mean normalised reward when pulled", 0.5);
  html += "<h2>Policy loss</h2>" + svg::line_chart({loss, margin}, "loss and DPO reward margin", "step", "value");
  if (!(by_category.size() == 1 && by_category.begin()->first.empty())) {
    html += "<h2>Which RM was chosen for which category</h2><table><tr><th>category</th>";
    for (const auto& a : arm_names) html += "<th>" + svg::html_escape(a) + "</th>";
    html += "</tr>";
    for (const auto& [cat, m] : by_category) {
      int n = 0;
      for (const auto& [a, c] : m) n += c;
      html += "<tr><td>" + svg::html_escape(cat.empty() ? "(none)" : cat) + "</td>";
      for (const auto& a : arm_names) {
        auto it = m.find(a);
        const int c = it == m.end() ? 0 : it->second;
        html += "<td>" + svg::fmt(n ? static_cast<double>(c) / n : 0.0, 2) + " (" + std::to_string(c) + ")</td>";
      }
      html += "</tr>";
    }
    html += "</table>";
  }
  html += "</body></html>\n";
  write_file_atomic(join_path(out_dir, "report.html"), html);
}

}  // namespace rmkit::select
