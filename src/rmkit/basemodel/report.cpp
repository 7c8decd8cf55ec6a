#include "rmkit/basemodel/report.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "rmkit/core/file_io.h"
#include "rmkit/eval/metrics/svg.h"

namespace rmkit::basemodel {

namespace {

using nlohmann::json;
namespace svg = rmkit::eval::svg;
using svg::fmt;
using svg::html_escape;

const std::vector<std::string> kPalette = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
const char* kStyle =
    "body{font-family:sans-serif;max-width:1080px;margin:24px auto;color:#222;padding:0 12px}"
    "h1{margin-bottom:2px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}"
    "table{border-collapse:collapse;margin:10px 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:left;font-size:13px}th{background:#f3f3f3}.ci{color:#777;font-size:11px}"
    ".note{color:#555;font-size:13px}svg{display:block;margin:10px 0}td.num{text-align:right}";

double d(const json& j, double dflt = NAN) { return j.is_number() ? j.get<double>() : dflt; }

std::string ci(const json& c) {
  if (!c.is_array() || c.size() != 2) return "";
  return " <span class=\"ci\">[" + fmt(d(c[0]), 2) + ", " + fmt(d(c[1]), 2) + "]</span>";
}

std::string pval(double p) {
  if (!std::isfinite(p)) return "n/a";
  if (p < 1e-4) {
    std::ostringstream o;
    o.precision(1);
    o << std::scientific << p;
    return o.str();
  }
  return fmt(p, 4);
}

// background shade for a correlation in [-1, 1]
std::string shade(double r) {
  if (!std::isfinite(r)) return "";
  const int a = static_cast<int>(std::round(std::min(1.0, std::fabs(r)) * 55));
  return r >= 0 ? " style=\"background:hsl(210,70%," + std::to_string(100 - a) + "%)\""
                : " style=\"background:hsl(10,70%," + std::to_string(100 - a) + "%)\"";
}

double mean_cov(const json& curve, size_t kmin, size_t kmax) {
  if (!curve.is_array() || curve.empty()) return NAN;
  kmax = std::min(kmax, curve.size());
  if (kmin < 1 || kmin > kmax) return NAN;
  double s = 0;
  for (size_t k = kmin; k <= kmax; ++k) s += d(curve[k - 1], 0);
  return s / static_cast<double>(kmax - kmin + 1);
}

std::string correlation_section(const json& a, const std::string& target, size_t kmin, size_t kmax) {
  std::ostringstream o;
  std::vector<std::pair<double, std::string>> order;
  for (const auto& f : a["features"]) {
    const std::string name = f.get<std::string>();
    order.emplace_back(-std::fabs(d(a["correlations"][name][target]["spearman"], 0)), name);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  o << "<h3>Correlations with " << html_escape(target) << "</h3><table><tr><th>feature</th><th>n</th><th>Pearson r [95% CI]</th>"
    << "<th>p</th><th>Spearman &rho; [95% CI]</th><th>p</th><th>Kendall &tau;-b</th><th>mean C@" << kmin << "&ndash;"
    << kmax << "</th><th>paper filter</th></tr>";
  for (const auto& [_, f] : order) {
    const json& c = a["correlations"][f][target];
    o << "<tr><td>" << html_escape(f) << "</td><td class=\"num\">" << c.value("n", 0) << "</td><td" << shade(d(c["pearson"]))
      << ">" << fmt(d(c["pearson"])) << ci(c.value("pearson_ci", json())) << "</td><td>" << pval(d(c["pearson_p"]))
      << "</td><td" << shade(d(c["spearman"])) << ">" << fmt(d(c["spearman"])) << ci(c.value("spearman_ci", json()))
      << "</td><td>" << pval(d(c["spearman_p"])) << "</td><td>" << fmt(d(c["kendall"])) << "</td><td>"
      << fmt(mean_cov(a["coverage"][f][target], kmin, kmax)) << "</td><td>"
      << (a["paper_filter"][f][target].get<bool>() ? "pass" : "&ndash;") << "</td></tr>";
  }
  o << "</table>";
  return o.str();
}

std::vector<std::pair<double, double>> curve_points(const json& c) {
  std::vector<std::pair<double, double>> p;
  for (size_t k = 0; k < c.size(); ++k) p.emplace_back(static_cast<double>(k + 1), d(c[k], 0));
  return p;
}

std::string coverage_chart(const json& a, const std::string& target, size_t kmin, size_t kmax) {
  std::vector<std::pair<double, std::string>> order;
  for (const auto& f : a["selector_features"]) {
    const std::string name = f.get<std::string>();
    order.emplace_back(-mean_cov(a["coverage"][name][target], kmin, kmax), name);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<svg::Series> s;
  for (size_t i = 0; i < order.size() && i < 4; ++i)
    s.push_back({order[i].second, curve_points(a["coverage"][order[i].second][target]), kPalette[i + 2]});
  if (a["elastic_net"].contains(target))
    s.push_back({"selector (in-sample)", curve_points(a["elastic_net"][target]["coverage"]), kPalette[0]});
  if (a["nested_cv"].contains(target))
    s.push_back({"selector (nested CV)", curve_points(a["nested_cv"][target]["selector"]["coverage"]), kPalette[1]});
  return svg::line_chart(s, "Top-k coverage C(k) for " + target, "k", "coverage");
}

std::string generalisation_table(const json& a, const std::string& target, size_t kmin, size_t kmax) {
  std::ostringstream o;
  auto row = [&](const std::string& what, const json& s) {
    o << "<tr><td>" << what << "</td><td class=\"num\">" << fmt(d(s["mae"]), 2) << "</td><td class=\"num\">"
      << fmt(d(s["mean_coverage"])) << "</td><td class=\"num\">" << fmt(d(s["spearman"])) << "</td></tr>";
  };
  o << "<table><tr><th>predictor</th><th>MAE (points)</th><th>mean C@" << kmin << "&ndash;" << kmax
    << "</th><th>Spearman</th></tr>";
  const json& n = a["nested_cv"][target];
  row("elastic net, in-sample", n["in_sample"]["selector"]);
  row("elastic net, nested CV", n["selector"]);
  const std::string bs = html_escape(a["best_single"][target]["feature"].get<std::string>());
  row("best single feature (" + bs + "), in-sample", n["in_sample"]["best_single"]);
  row("best single feature, chosen in each outer fold", n["best_single"]);
  if (a["leave_one_family_out"].contains(target)) {
    row("elastic net, leave one family out", a["leave_one_family_out"][target]["selector"]);
    row("best single feature, leave one family out", a["leave_one_family_out"][target]["best_single"]);
  }
  o << "</table><p class=\"note\">Outer folds chose:";
  for (const auto& f : n["folds"])
    o << " [" << html_escape(f["fold"].dump()) << ": degree " << f["degree"] << ", &alpha; " << f["alpha"] << ", l1 "
      << f["l1_ratio"] << ", single " << html_escape(f["best_single"].get<std::string>()) << "]";
  o << "</p>";
  return o.str();
}

std::string selector_section(const json& a, const std::string& target) {
  std::ostringstream o;
  const json& e = a["elastic_net"][target];
  o << "<p>Chosen by CV: degree <b>" << e["degree"] << "</b>, &alpha; <b>" << e["alpha"] << "</b>, l1_ratio <b>"
    << e["l1_ratio"] << "</b>; CV MSE " << fmt(d(e["cv_mse"])) << "; " << e["coefficients"].size() << " of "
    << e["n_terms"] << " terms non-zero; intercept " << fmt(d(e["intercept"])) << "; in-sample MAE "
    << fmt(d(e["in_sample_mae"]), 2) << ".</p>";
  std::vector<std::pair<double, std::string>> cs;
  for (const auto& [k, v] : e["coefficients"].items()) cs.emplace_back(v.get<double>(), k);
  std::stable_sort(cs.begin(), cs.end(), [](const auto& x, const auto& y) { return std::fabs(x.first) > std::fabs(y.first); });
  o << "<table><tr><th>term (z-scored)</th><th>coefficient</th></tr>";
  for (const auto& [v, k] : cs) o << "<tr><td>" << html_escape(k) << "</td><td class=\"num\">" << fmt(v, 4) << "</td></tr>";
  o << "</table>";
  return o.str();
}

std::string candidates_section(const json& a, const std::string& target) {
  const json& c = a["candidates"][target];
  if (!c.is_array() || c.empty()) return "<p class=\"note\">No rows without a target: no candidates to predict.</p>";
  std::ostringstream o;
  o << "<table><tr><th>rank</th><th>candidate</th><th>predicted " << html_escape(target)
    << "</th><th>outer-fold spread</th></tr>";
  int rank = 1;
  for (const auto& r : c) {
    o << "<tr><td>" << rank++ << "</td><td>" << html_escape(r["model"].get<std::string>()) << "</td>";
    if (r["predicted"].is_null()) o << "<td colspan=\"2\">" << html_escape(r.value("note", "")) << "</td></tr>";
    else
      o << "<td class=\"num\">" << fmt(d(r["predicted"]), 2) << "</td><td>[" << fmt(d(r["low"]), 2) << ", "
        << fmt(d(r["high"]), 2) << "]</td></tr>";
  }
  o << "</table>";
  return o.str();
}

}  // namespace

std::string render_basemodel_report(const json& a, const std::string& subtitle) {
  std::ostringstream o;
  const size_t kmin = a["settings"]["coverage_k"][0].get<size_t>(), kmax = a["settings"]["coverage_k"][1].get<size_t>();
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rmkit basemodel analysis</title><style>"
    << kStyle << "</style></head><body>\n<h1>Base-model choice for reward modeling</h1>\n";
  if (!subtitle.empty()) o << "<p class=\"note\">" << html_escape(subtitle) << "</p>\n";
  o << "<p>" << a["n"] << " models with targets; features: ";
  for (size_t i = 0; i < a["features"].size(); ++i) o << (i ? ", " : "") << html_escape(a["features"][i].get<std::string>());
  o << ". Selector features (complete): ";
  for (size_t i = 0; i < a["selector_features"].size(); ++i)
    o << (i ? ", " : "") << html_escape(a["selector_features"][i].get<std::string>());
  o << ". CV: " << html_escape(a["settings"]["cv"].get<std::string>()) << ", seed " << a["settings"]["seed"] << ".</p>\n";
  const json& m = a["missing"];
  if (!m["dropped_features"].empty() || !m["dropped_rows"].empty())
    o << "<p class=\"note\">Missing values (" << html_escape(m["policy"].get<std::string>()) << " policy): dropped features "
      << html_escape(m["dropped_features"].dump()) << "; dropped rows " << html_escape(m["dropped_rows"].dump())
      << ". Correlations use every row where both the feature and the target exist (n per cell).</p>\n";
  for (const auto& tj : a["targets"]) {
    const std::string t = tj.get<std::string>();
    o << "<section><h2>Target: " << html_escape(t) << "</h2>\n";
    o << correlation_section(a, t, kmin, kmax);
    const json& bs = a["best_single"][t];
    o << "<p>Best single feature by mean coverage over k = " << kmin << "&ndash;" << kmax << ": <b>"
      << html_escape(bs["feature"].get<std::string>()) << "</b> (" << fmt(d(bs["mean_coverage"])) << ").</p>";
    o << coverage_chart(a, t, kmin, kmax);
    o << "<h3>Elastic-net selector</h3>" << selector_section(a, t);
    if (a["nested_cv"].contains(t)) o << "<h3>In-sample vs nested cross-validation</h3>" << generalisation_table(a, t, kmin, kmax);
    o << "<h3>Candidates (rows without a target)</h3>" << candidates_section(a, t) << "</section>\n";
  }
  o << "<section><h2>PCA of the standardised selector features</h2>";
  std::vector<svg::BarItem> bars;
  const json& p = a["pca"];
  for (size_t i = 0; i < p["explained_variance_ratio"].size(); ++i) {
    svg::BarItem b;
    b.label = "PC" + std::to_string(i + 1);
    b.value = d(p["explained_variance_ratio"][i], 0);
    b.note = fmt(100 * b.value, 1) + "%";
    bars.push_back(b);
  }
  o << svg::bar_chart(bars, "Explained variance ratio") << "</section>\n</body></html>\n";
  return o.str();
}

void write_basemodel_report(const std::string& path, const json& analysis, const std::string& subtitle) {
  write_file_atomic(path, render_basemodel_report(analysis, subtitle));
}

}  // namespace rmkit::basemodel
