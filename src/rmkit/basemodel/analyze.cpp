#include "rmkit/basemodel/analyze.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "rmkit/basemodel/coverage.h"
#include "rmkit/basemodel/linalg.h"
#include "rmkit/basemodel/stats.h"
#include "rmkit/core/error.h"
#include "rmkit/core/progress.h"

namespace rmkit::basemodel {

namespace {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json interval_json(Interval iv) { return json::array({num(iv.low), num(iv.high)}); }

json hp_json(const GridPoint& g) { return {{"degree", g.degree}, {"alpha", g.alpha}, {"l1_ratio", g.l1_ratio}}; }

// Column values as doubles (NaN = missing); FormatError for a bad cell.
std::vector<double> numeric_column(const Table& t, size_t c) {
  std::vector<double> v(t.rows());
  for (size_t r = 0; r < t.rows(); ++r) {
    auto x = t.number(r, c);
    v[r] = x ? *x : kNaN;
  }
  return v;
}

struct Pairwise {
  std::vector<double> x, y;
};
Pairwise complete(const std::vector<double>& x, const std::vector<double>& y, const std::vector<size_t>& rows) {
  Pairwise p;
  for (size_t r : rows)
    if (std::isfinite(x[r]) && std::isfinite(y[r])) p.x.push_back(x[r]), p.y.push_back(y[r]);
  return p;
}

json curve_json(const std::vector<double>& c) {
  json a = json::array();
  for (double v : c) a.push_back(v);
  return a;
}

// In-sample / out-of-fold summary of a prediction against the target.
json prediction_summary(const std::vector<double>& pred, const std::vector<double>& y, size_t k_min, size_t k_max) {
  const auto cov = coverage_curve(pred, y);
  return {{"mae", num(mean_absolute_error(pred, y))},
          {"mean_coverage", num(mean_coverage(cov, k_min, k_max))},
          {"spearman", num(spearman(pred, y))},
          {"coverage", curve_json(cov)}};
}

}  // namespace

std::vector<std::pair<std::string, int>> read_folds_file(const std::string& path) {
  Table t = read_table(path);
  const size_t mc = t.index("model"), fc = t.index("fold");
  std::vector<std::pair<std::string, int>> out;
  for (size_t r = 0; r < t.rows(); ++r) {
    auto f = t.number(r, fc);
    if (!f || *f != std::floor(*f)) throw FormatError(t.where(r, fc) + ": column 'fold': expected an integer");
    out.emplace_back(t.cells[r][mc], static_cast<int>(*f));
  }
  return out;
}

json analyze_table(const Table& t, const AnalyzeOptions& o, const std::function<void(const std::string&)>& log_fn) {
  auto log = [&](const std::string& s) {
    if (log_fn) log_fn(s);
  };
  if (o.targets.empty()) throw UsageError("give at least one --target column");
  const size_t name_col = t.index(o.name_column);
  const auto fam_col = t.find(o.family_column);
  std::vector<size_t> target_cols;
  for (const auto& n : o.targets) target_cols.push_back(t.index(n));
  std::vector<std::string> features = o.features;
  std::vector<std::string> skipped_non_numeric;
  if (features.empty()) {
    for (size_t c = 0; c < t.columns.size(); ++c) {
      const std::string& n = t.columns[c];
      if (c == name_col || (fam_col && c == *fam_col) ||
          std::find(o.targets.begin(), o.targets.end(), n) != o.targets.end())
        continue;
      if (t.is_numeric(c)) features.push_back(n);
      else skipped_non_numeric.push_back(n);
    }
  }
  if (features.empty()) throw UsageError(t.source + ": no numeric feature columns");
  std::vector<std::vector<double>> F, Y;
  for (const auto& f : features) F.push_back(numeric_column(t, t.index(f)));
  for (size_t c : target_cols) Y.push_back(numeric_column(t, c));
  const size_t nrows = t.rows();
  std::vector<std::string> names(nrows);
  for (size_t r = 0; r < nrows; ++r) names[r] = t.cells[r][name_col];

  // labelled rows: any target present; candidates: no target at all
  std::vector<size_t> labelled, candidates;
  for (size_t r = 0; r < nrows; ++r) {
    bool any = false;
    for (const auto& y : Y) any = any || std::isfinite(y[r]);
    (any ? labelled : candidates).push_back(r);
  }
  if (labelled.size() < 4) throw UsageError(t.source + ": need at least 4 rows with a target, got " + std::to_string(labelled.size()));

  // missing cells among labelled rows -> selector feature set and rows
  json missing = {{"policy", o.missing}, {"dropped_features", json::object()}, {"dropped_rows", json::array()},
                  {"non_numeric_columns_ignored", skipped_non_numeric}};
  std::vector<size_t> sel_features;  // indices into features
  std::vector<size_t> rows = labelled;
  if (o.missing == "features") {
    for (size_t f = 0; f < features.size(); ++f) {
      size_t miss = 0;
      for (size_t r : labelled) miss += !std::isfinite(F[f][r]);
      if (miss) missing["dropped_features"][features[f]] = miss;
      else sel_features.push_back(f);
    }
  } else if (o.missing == "rows") {
    for (size_t f = 0; f < features.size(); ++f) sel_features.push_back(f);
    rows.clear();
    for (size_t r : labelled) {
      bool ok = true;
      for (size_t f : sel_features) ok = ok && std::isfinite(F[f][r]);
      if (ok) rows.push_back(r);
      else missing["dropped_rows"].push_back(names[r]);
    }
  } else {
    throw UsageError("--missing: expected features or rows, got '" + o.missing + "'");
  }
  // rows must also have every target for the selector (a target missing in a labelled row drops it)
  {
    std::vector<size_t> keep;
    for (size_t r : rows) {
      bool ok = true;
      for (const auto& y : Y) ok = ok && std::isfinite(y[r]);
      if (ok) keep.push_back(r);
      else missing["dropped_rows"].push_back(names[r] + " (a target is missing)");
    }
    rows = keep;
  }
  if (sel_features.empty()) throw UsageError("no feature is complete over the rows with a target (try --missing rows)");
  if (rows.size() < 4) throw UsageError("fewer than 4 complete rows for the selector (try --missing features)");
  std::vector<std::string> sel_names;
  for (size_t f : sel_features) sel_names.push_back(features[f]);
  log("analyze: " + std::to_string(rows.size()) + " rows with targets, " + std::to_string(candidates.size()) +
      " candidates, " + std::to_string(sel_features.size()) + " of " + std::to_string(features.size()) +
      " features complete (" + o.missing + " policy)");

  json out;
  out["n"] = rows.size();
  out["features"] = features;
  out["selector_features"] = sel_names;
  out["targets"] = o.targets;
  out["missing"] = missing;
  out["settings"] = {{"seed", o.seed},
                     {"bootstrap", o.bootstrap},
                     {"coverage_k", {o.k_min, o.k_max}},
                     {"cv", o.folds_file.empty() ? (o.loo ? "leave-one-out" : std::to_string(o.folds) + "-fold")
                                                 : "folds file " + o.folds_file},
                     {"grid", json::array()},
                     {"nested", o.nested}};
  for (const auto& g : o.grid) out["settings"]["grid"].push_back(hp_json(g));

  // correlations and coverage: pairwise complete over labelled rows
  out["correlations"] = json::object();
  out["coverage"] = json::object();
  out["paper_filter"] = json::object();
  uint64_t pair_index = 0;
  for (size_t f = 0; f < features.size(); ++f)
    for (size_t ti = 0; ti < o.targets.size(); ++ti, ++pair_index) {
      Pairwise p = complete(F[f], Y[ti], labelled);
      const double pr = pearson(p.x, p.y), sr = spearman(p.x, p.y);
      json c = {{"n", p.x.size()},
                {"pearson", num(pr)},
                {"pearson_p", num(correlation_p_value(pr, p.x.size()))},
                {"spearman", num(sr)},
                {"spearman_p", num(correlation_p_value(sr, p.x.size()))},
                {"kendall", num(kendall_tau_b(p.x, p.y))}};
      if (o.bootstrap > 0) {
        c["pearson_ci"] = interval_json(bootstrap_interval(p.x, p.y, pearson, o.bootstrap, o.seed * 1000003 + 2 * pair_index));
        c["spearman_ci"] = interval_json(bootstrap_interval(p.x, p.y, spearman, o.bootstrap, o.seed * 1000003 + 2 * pair_index + 1));
      }
      out["correlations"][features[f]][o.targets[ti]] = c;
      const auto cov = coverage_curve(p.x, p.y);
      out["coverage"][features[f]][o.targets[ti]] = curve_json(cov);
      out["paper_filter"][features[f]][o.targets[ti]] = passes_paper_filter(cov);
    }

  // selector matrix
  Matrix X(rows.size(), sel_features.size());
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < sel_features.size(); ++j) X(i, j) = F[sel_features[j]][rows[i]];
  Matrix Xc(candidates.size(), sel_features.size());
  std::vector<bool> cand_ok(candidates.size(), true);
  for (size_t i = 0; i < candidates.size(); ++i)
    for (size_t j = 0; j < sel_features.size(); ++j) {
      const double v = F[sel_features[j]][candidates[i]];
      if (!std::isfinite(v)) cand_ok[i] = false;
      Xc(i, j) = std::isfinite(v) ? v : 0;
    }

  // folds over the selector rows
  std::vector<int> fold(rows.size());
  if (!o.folds_file.empty()) {
    std::map<std::string, int> by_name;
    for (const auto& [n, f] : read_folds_file(o.folds_file)) by_name[n] = f;
    for (size_t i = 0; i < rows.size(); ++i) {
      auto it = by_name.find(names[rows[i]]);
      if (it == by_name.end()) throw UsageError(o.folds_file + ": no fold for model '" + names[rows[i]] + "'");
      fold[i] = it->second;
    }
    if (std::set<int>(fold.begin(), fold.end()).size() < 2) throw UsageError(o.folds_file + ": needs at least 2 folds");
  } else {
    fold = kfold_assignment(rows.size(), o.loo ? static_cast<int>(rows.size()) : o.folds, o.seed);
  }
  out["folds"] = json::object();
  for (size_t i = 0; i < rows.size(); ++i) out["folds"][names[rows[i]]] = fold[i];

  std::vector<int> family_fold;
  std::vector<std::string> family_names;
  if (fam_col) {
    std::map<std::string, int> ids;
    for (size_t r : rows) {
      const std::string& fam = t.cells[r][*fam_col];
      if (!ids.count(fam)) {
        ids[fam] = static_cast<int>(family_names.size());
        family_names.push_back(fam);
      }
      family_fold.push_back(ids[fam]);
    }
  }

  // PCA of the standardised selector features
  {
    PcaResult pca = pca_standardized(X);
    json comps = json::array();
    for (size_t c = 0; c < pca.components.rows; ++c) {
      json l = json::object();
      for (size_t j = 0; j < sel_names.size(); ++j) l[sel_names[j]] = pca.components(c, j);
      comps.push_back(l);
    }
    out["pca"] = {{"features", sel_names},
                  {"explained_variance", pca.explained_variance},
                  {"explained_variance_ratio", pca.explained_variance_ratio},
                  {"components", comps}};
  }

  out["best_single"] = json::object();
  out["elastic_net"] = json::object();
  out["nested_cv"] = json::object();
  out["leave_one_family_out"] = json::object();
  out["candidates"] = json::object();
  Progress progress("basemodel analyze", static_cast<int64_t>(o.targets.size()));
  for (size_t ti = 0; ti < o.targets.size(); ++ti) {
    const std::string& tname = o.targets[ti];
    std::vector<double> y(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) y[i] = Y[ti][rows[i]];

    // best single feature (selector features, all rows)
    SingleFeatureModel single = best_single_feature(X, y, o.k_min, o.k_max);
    {
      std::vector<double> sp(rows.size());
      for (size_t i = 0; i < rows.size(); ++i) sp[i] = single.intercept + single.slope * X(i, single.feature);
      const auto cov = coverage_curve(X.column(single.feature), y);
      json ranking = json::array();
      for (size_t j = 0; j < sel_names.size(); ++j)
        ranking.push_back({{"feature", sel_names[j]},
                           {"mean_coverage", num(mean_coverage(coverage_curve(X.column(j), y), o.k_min, o.k_max))}});
      std::stable_sort(ranking.begin(), ranking.end(), [](const json& a, const json& b) {
        return a["mean_coverage"].get<double>() > b["mean_coverage"].get<double>();
      });
      out["best_single"][tname] = {{"feature", sel_names[single.feature]},
                                   {"mean_coverage", num(mean_coverage(cov, o.k_min, o.k_max))},
                                   {"passes_paper_filter", passes_paper_filter(cov)},
                                   {"line", {{"slope", single.slope}, {"intercept", single.intercept}}},
                                   {"in_sample_mae", num(mean_absolute_error(sp, y))},
                                   {"ranking", ranking}};
    }

    // elastic net: CV over the grid, refit on all rows
    CvResult cv = grid_cv(X, y, fold, o.grid, o.enet);
    SelectorModel model = fit_selector(X, y, o.grid[cv.best], o.enet);
    const auto pred = model.predict(X);
    json coefs = json::object();
    for (size_t j = 0; j < model.terms.size(); ++j)
      if (model.fit.coef[j] != 0) coefs[term_name(model.terms[j], sel_names)] = model.fit.coef[j];
    json preds = json::object();
    for (size_t i = 0; i < rows.size(); ++i) preds[names[rows[i]]] = pred[i];
    json en = hp_json(model.hp);
    const auto cov = coverage_curve(pred, y);
    en["cv_mse"] = cv.mse[cv.best];
    en["cv_mse_grid"] = cv.mse;
    en["intercept"] = model.fit.intercept;
    en["coefficients"] = coefs;
    en["n_terms"] = model.terms.size();
    en["predictions"] = preds;
    en["coverage"] = curve_json(cov);
    en["mean_coverage"] = num(mean_coverage(cov, o.k_min, o.k_max));
    en["in_sample_mae"] = num(mean_absolute_error(pred, y));
    en["fits_not_converged"] = cv.not_converged + (model.fit.converged ? 0 : 1);
    out["elastic_net"][tname] = en;

    std::vector<SelectorModel> interval_models;
    auto nested_json = [&](const std::vector<int>& outer, const std::vector<std::string>* fold_names) {
      NestedCvResult nr = nested_cv(X, y, outer, o.folds, o.seed, o.grid, o.k_min, o.k_max, o.enet, o.threads);
      json per_fold = json::array();
      for (size_t k = 0; k < nr.outer_folds.size(); ++k) {
        json pf = hp_json(nr.chosen[k]);
        pf["fold"] = fold_names ? json((*fold_names)[static_cast<size_t>(nr.outer_folds[k])]) : json(nr.outer_folds[k]);
        pf["best_single"] = sel_names[nr.chosen_single[k]];
        per_fold.push_back(pf);
      }
      json oof_sel = json::object(), oof_single = json::object();
      for (size_t i = 0; i < rows.size(); ++i) {
        oof_sel[names[rows[i]]] = nr.selector_pred[i];
        oof_single[names[rows[i]]] = nr.single_pred[i];
      }
      json j = {{"selector", prediction_summary(nr.selector_pred, y, o.k_min, o.k_max)},
                {"best_single", prediction_summary(nr.single_pred, y, o.k_min, o.k_max)},
                {"in_sample", {{"selector", prediction_summary(pred, y, o.k_min, o.k_max)},
                               {"best_single", prediction_summary(X.column(single.feature), y, o.k_min, o.k_max)}}},
                {"folds", per_fold},
                {"predictions", {{"selector", oof_sel}, {"best_single", oof_single}}},
                {"fits_not_converged", nr.not_converged}};
      // the in-sample single-feature MAE is that of its least-squares line, not of the raw feature
      std::vector<double> sp(rows.size());
      for (size_t i = 0; i < rows.size(); ++i) sp[i] = single.intercept + single.slope * X(i, single.feature);
      j["in_sample"]["best_single"]["mae"] = num(mean_absolute_error(sp, y));
      if (interval_models.empty()) interval_models = std::move(nr.models);
      return j;
    };
    if (o.nested) {
      out["nested_cv"][tname] = nested_json(fold, nullptr);
      if (fam_col && family_names.size() >= 2) out["leave_one_family_out"][tname] = nested_json(family_fold, &family_names);
    }

    // candidates: final prediction, interval = spread of the outer-fold models
    json cands = json::array();
    if (!candidates.empty()) {
      const auto cp = model.predict(Xc);
      std::vector<std::vector<double>> per_model;
      for (const auto& m : interval_models) per_model.push_back(m.predict(Xc));
      std::vector<size_t> ok;
      std::vector<double> score;
      for (size_t i = 0; i < candidates.size(); ++i)
        if (cand_ok[i]) ok.push_back(i), score.push_back(cp[i]);
      for (size_t k : rank_order(score)) {
        const size_t i = ok[k];
        double lo = cp[i], hi = cp[i];
        for (const auto& pm : per_model) lo = std::min(lo, pm[i]), hi = std::max(hi, pm[i]);
        cands.push_back({{"model", names[candidates[i]]}, {"predicted", cp[i]}, {"low", lo}, {"high", hi}});
      }
      for (size_t i = 0; i < candidates.size(); ++i)
        if (!cand_ok[i]) cands.push_back({{"model", names[candidates[i]]}, {"predicted", nullptr},
                                          {"note", "a selector feature is missing"}});
    }
    out["candidates"][tname] = cands;
    progress.update(static_cast<int64_t>(ti + 1), tname);
    log("analyze: " + tname + ": selector degree " + std::to_string(model.hp.degree) + " alpha " +
        std::to_string(model.hp.alpha) + " l1_ratio " + std::to_string(model.hp.l1_ratio) + ", " +
        std::to_string(coefs.size()) + " non-zero terms");
  }
  progress.finish();
  return out;
}

}  // namespace rmkit::basemodel
