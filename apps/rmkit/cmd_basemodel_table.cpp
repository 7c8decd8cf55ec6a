// rmkit basemodel table --merge A.csv B.csv ...: outer join of model tables on the model name.
#include <iostream>

#include "cmd_basemodel.h"
#include "rmkit/basemodel/table.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"

namespace rmkit::cli {
namespace {

int run_table(const Options& o) {
  std::vector<basemodel::Table> tables;
  for (const auto& p : o.list("merge")) tables.push_back(basemodel::read_table(p));
  if (tables.empty()) throw UsageError("give the tables to join with --merge A.csv B.csv ...");
  basemodel::MergeReport rep;
  basemodel::Table m = basemodel::merge_tables(tables, o.str("name-column"), &rep);
  const std::string csv = basemodel::to_csv(m);
  if (o.has("output")) write_file_atomic(o.str("output"), csv);
  else std::cout << csv;
  std::cerr << "merged " << tables.size() << " tables: " << m.rows() << " models, " << m.columns.size() << " columns\n";
  for (size_t i = 0; i < tables.size(); ++i)
    if (!rep.missing_from[i].empty()) {
      std::cerr << "  " << tables[i].source << " lacks " << rep.missing_from[i].size() << ":";
      for (const auto& n : rep.missing_from[i]) std::cerr << " " << n;
      std::cerr << "\n";
    }
  if (!rep.in_one_table_only.empty()) {
    std::cerr << "  in one table only (" << rep.in_one_table_only.size() << "):";
    for (const auto& n : rep.in_one_table_only) std::cerr << " " << n;
    std::cerr << "\n";
  }
  for (const auto& r : rep.renamed) std::cerr << "  renamed column " << r << "\n";
  if (o.has("output")) std::cerr << "wrote " << o.str("output") << "\n";
  return 0;
}

BasemodelVerb reg({"table",
                   "join model tables (CSV or JSONL) on the model name; reports names found in one table only",
                   {
                       {"merge", OptKind::String, "", "tables to join (CSV with '#' comments, or JSONL)", true, true},
                       {"name-column", OptKind::String, "model", "column holding the model name"},
                       {"output", OptKind::String, "", "merged CSV (default: stdout)"},
                   },
                   {},
                   run_table});

}  // namespace
}  // namespace rmkit::cli
