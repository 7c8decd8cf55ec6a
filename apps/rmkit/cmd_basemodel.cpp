// rmkit basemodel: predicting which base LLM makes the best reward model (arXiv 2505.10775) —
// the dispatcher; each verb lives in cmd_basemodel_<verb>.cpp.
#include "cmd_basemodel.h"

#include <iostream>

#include "rmkit/core/file_io.h"

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

void merge_into_table(const Options& o, const basemodel::Table& rows, const std::string& out_dir) {
  if (!o.has("table")) return;
  basemodel::Table t = basemodel::read_table(o.str("table"));
  basemodel::MergeReport rep;
  basemodel::Table m = basemodel::merge_tables({t, rows}, "model", &rep);
  const std::string path = join_path(out_dir, "table.csv");
  write_file_atomic(path, basemodel::to_csv(m));
  std::cout << "wrote " << path << " (" << o.str("table") << " + the new columns";
  if (!rep.missing_from[0].empty()) std::cout << "; " << rep.missing_from[0].size() << " new model(s) not in the table";
  std::cout << ")\n";
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
