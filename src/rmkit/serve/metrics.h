// Prometheus metrics in the text exposition format (version 0.0.4): HELP and TYPE lines, counters
// named *_total, histograms as _bucket{le="…"} (cumulative, ending in le="+Inf") + _sum + _count,
// label values escaped (backslash, double quote, newline). Thread-safe; one registry per server.
#pragma once
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace rmkit::serve {

using Labels = std::vector<std::pair<std::string, std::string>>;

class MetricsRegistry {
 public:
  // Declarations (once per metric name, before use).
  void counter(const std::string& name, const std::string& help);
  void gauge(const std::string& name, const std::string& help);
  void histogram(const std::string& name, const std::string& help, std::vector<double> buckets);

  void inc(const std::string& name, const Labels& labels = {}, double v = 1.0);
  void set(const std::string& name, double v, const Labels& labels = {});
  void observe(const std::string& name, double v, const Labels& labels = {});

  // A gauge sampled at scrape time (e.g. process RSS), rendered after the registered families.
  struct Sample {
    std::string name, help;
    double value;
  };
  std::string render(const std::vector<Sample>& sampled = {}) const;

  // The current value of a counter or gauge (0 when never touched); for tests.
  double value(const std::string& name, const Labels& labels = {}) const;

 private:
  struct Hist {
    std::vector<double> counts;  // per bucket, not cumulative; last = +Inf
    double sum = 0;
    double count = 0;
  };
  struct Family {
    std::string type, help;
    std::vector<double> buckets;
    std::map<std::string, double> values;  // rendered label set -> value
    std::map<std::string, Hist> hists;
  };
  Family& family(const std::string& name);
  const Family* find(const std::string& name) const;
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
  std::vector<std::string> order_;
};

// "{a=\"x\",b=\"y\"}" with escaped values, "" for no labels.
std::string render_labels(const Labels& labels);
// Resident set size of this process in bytes (from /proc/self/statm), 0 when unknown.
double process_rss_bytes();

}  // namespace rmkit::serve
