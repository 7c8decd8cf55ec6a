// rmkit basemodel: predicting which base LLM makes the best reward model (arXiv 2505.10775) —
// the dispatcher; each verb lives in cmd_basemodel_<verb>.cpp.
#include "cmd_basemodel.h"

namespace rmkit::cli {

std::vector<Command>& basemodel_verbs() {
  static std::vector<Command> v;
  return v;
}

std::vector<std::string> split_list(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    size_t start = 0;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      if (comma == std::string::npos) comma = v.size();
      if (comma > start) out.push_back(v.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

namespace {
CommandRegistrar reg({"basemodel",
                      "choose a base model for a reward model: analyze | presence | jsd | probe | table",
                      {},
                      {},
                      [](const Options&) { return 2; },
                      false,
                      &basemodel_verbs()});
}  // namespace

}  // namespace rmkit::cli
