#include "rmkit/core/metrics_log.h"

#include <cerrno>
#include <cmath>
#include <cstring>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"

namespace rmkit {
namespace {

// JSON cannot hold NaN/inf; nlohmann would dump them as null anyway, but make it explicit and
// recursive so nested objects are covered too.
nlohmann::json sanitize(const nlohmann::json& j) {
  if (j.is_number_float()) {
    double v = j.get<double>();
    return std::isfinite(v) ? j : nlohmann::json(nullptr);
  }
  if (j.is_object()) {
    nlohmann::json o = nlohmann::json::object();
    for (auto it = j.begin(); it != j.end(); ++it) o[it.key()] = sanitize(it.value());
    return o;
  }
  if (j.is_array()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& v : j) a.push_back(sanitize(v));
    return a;
  }
  return j;
}

}  // namespace

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "a");
  if (!f_) throw IoError(path + ": cannot open metrics log for appending: " + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(const nlohmann::json& record) {
  std::string line = sanitize(record).dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
    throw IoError(path_ + ": write failed: " + std::strerror(errno));
}

std::vector<nlohmann::json> MetricsLog::read(const std::string& path, std::vector<std::string>* warnings) {
  std::vector<nlohmann::json> out;
  const std::string text = read_file(path);
  size_t start = 0, no = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    const bool complete = nl != std::string::npos;
    std::string line = text.substr(start, complete ? nl - start : std::string::npos);
    start = complete ? nl + 1 : text.size();
    ++no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    try {
      out.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      if (!complete) {
        const std::string w = path + ":" + std::to_string(no) +
                              ": incomplete last line ignored (the run was interrupted while writing it)";
        if (warnings) warnings->push_back(w);
        else std::fprintf(stderr, "warning: %s\n", w.c_str());
        break;
      }
      throw FormatError(path + ":" + std::to_string(no) + ": invalid JSON line: " + clip_text(e.what()));
    }
  }
  return out;
}

size_t MetricsLog::truncate_after_step(const std::string& path, long long last_step) {
  if (!path_exists(path)) return 0;
  std::string kept;
  size_t dropped = 0;
  for (const auto& rec : read(path, nullptr)) {
    if (rec.contains("step") && rec["step"].is_number() && rec["step"].get<long long>() > last_step) {
      ++dropped;
      continue;
    }
    kept += rec.dump() + "\n";
  }
  write_file_atomic(path, kept);
  return dropped;
}

}  // namespace rmkit
