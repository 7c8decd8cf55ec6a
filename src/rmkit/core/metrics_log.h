// Append-only JSON-lines metrics log (OUT/metrics.jsonl): one object per line, flushed after every
// write so a crashed or interrupted run keeps everything logged so far. Torch-free.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rmkit {

class MetricsLog {
 public:
  // Opens `path` for appending (creates it). Throws IoError naming the path.
  explicit MetricsLog(const std::string& path);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // Writes record.dump() + '\n' and flushes. Non-finite numbers are written as null (JSON has no
  // NaN), so the file stays parseable.
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

  // Reads every line of a metrics file; throws FormatError naming path:line for a bad line. An
  // incomplete last line (no final newline and not valid JSON: the process was killed mid-write)
  // is left out with a warning, appended to `warnings` or, when that is null, printed to stderr.
  static std::vector<nlohmann::json> read(const std::string& path, std::vector<std::string>* warnings = nullptr);
  // Resume support: atomically rewrites `path` keeping only records whose "step" is <= last_step
  // (records without a step are kept) and no incomplete last line. Missing file: no-op. Returns the
  // number of records dropped.
  static size_t truncate_after_step(const std::string& path, long long last_step);

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace rmkit
