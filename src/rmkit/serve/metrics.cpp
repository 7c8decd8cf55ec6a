#include "rmkit/serve/metrics.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "rmkit/core/error.h"

namespace rmkit::serve {
namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string fmt(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  for (int prec = 6; prec <= 17; ++prec) {  // shortest form that reads back exactly
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// Adds le="x" to a rendered label set.
std::string with_le(const std::string& labels, const std::string& le) {
  if (labels.empty()) return "{le=\"" + le + "\"}";
  return labels.substr(0, labels.size() - 1) + ",le=\"" + le + "\"}";
}

}  // namespace

std::string render_labels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string s = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) s += ",";
    s += labels[i].first + "=\"" + escape_label(labels[i].second) + "\"";
  }
  return s + "}";
}

double process_rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long pages_total = 0, pages_rss = 0;
  int n = std::fscanf(f, "%ld %ld", &pages_total, &pages_rss);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<double>(pages_rss) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

MetricsRegistry::Family& MetricsRegistry::family(const std::string& name) {
  auto it = families_.find(name);
  if (it == families_.end()) throw Error("metrics: '" + name + "' used before it was declared");
  return it->second;
}

const MetricsRegistry::Family* MetricsRegistry::find(const std::string& name) const {
  auto it = families_.find(name);
  return it == families_.end() ? nullptr : &it->second;
}

void MetricsRegistry::counter(const std::string& name, const std::string& help) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!families_.count(name)) order_.push_back(name);
  families_[name] = Family{"counter", help, {}, {}, {}};
}

void MetricsRegistry::gauge(const std::string& name, const std::string& help) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!families_.count(name)) order_.push_back(name);
  families_[name] = Family{"gauge", help, {}, {}, {}};
}

void MetricsRegistry::histogram(const std::string& name, const std::string& help, std::vector<double> buckets) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!families_.count(name)) order_.push_back(name);
  families_[name] = Family{"histogram", help, std::move(buckets), {}, {}};
}

void MetricsRegistry::inc(const std::string& name, const Labels& labels, double v) {
  std::lock_guard<std::mutex> lk(mu_);
  family(name).values[render_labels(labels)] += v;
}

void MetricsRegistry::set(const std::string& name, double v, const Labels& labels) {
  std::lock_guard<std::mutex> lk(mu_);
  family(name).values[render_labels(labels)] = v;
}

void MetricsRegistry::observe(const std::string& name, double v, const Labels& labels) {
  std::lock_guard<std::mutex> lk(mu_);
  Family& f = family(name);
  Hist& h = f.hists[render_labels(labels)];
  if (h.counts.empty()) h.counts.assign(f.buckets.size() + 1, 0.0);
  size_t b = 0;
  while (b < f.buckets.size() && v > f.buckets[b]) ++b;
  h.counts[b] += 1;
  h.sum += v;
  h.count += 1;
}

double MetricsRegistry::value(const std::string& name, const Labels& labels) const {
  std::lock_guard<std::mutex> lk(mu_);
  const Family* f = find(name);
  if (!f) return 0;
  auto key = render_labels(labels);
  if (f->type == "histogram") {
    auto it = f->hists.find(key);
    return it == f->hists.end() ? 0 : it->second.count;
  }
  auto it = f->values.find(key);
  return it == f->values.end() ? 0 : it->second;
}

std::string MetricsRegistry::render(const std::vector<Sample>& sampled) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::ostringstream os;
  for (const auto& name : order_) {
    const Family& f = families_.at(name);
    os << "# HELP " << name << " " << escape_help(f.help) << "\n# TYPE " << name << " " << f.type << "\n";
    if (f.type == "histogram") {
      for (const auto& [labels, h] : f.hists) {
        double cum = 0;
        for (size_t b = 0; b < f.buckets.size(); ++b) {
          cum += h.counts[b];
          os << name << "_bucket" << with_le(labels, fmt(f.buckets[b])) << " " << fmt(cum) << "\n";
        }
        os << name << "_bucket" << with_le(labels, "+Inf") << " " << fmt(h.count) << "\n";
        os << name << "_sum" << labels << " " << fmt(h.sum) << "\n";
        os << name << "_count" << labels << " " << fmt(h.count) << "\n";
      }
    } else {
      if (f.values.empty() && f.type == "gauge") continue;
      for (const auto& [labels, v] : f.values) os << name << labels << " " << fmt(v) << "\n";
    }
  }
  for (const auto& s : sampled)
    os << "# HELP " << s.name << " " << escape_help(s.help) << "\n# TYPE " << s.name << " gauge\n"
       << s.name << " " << fmt(s.value) << "\n";
  return os.str();
}

}  // namespace rmkit::serve
