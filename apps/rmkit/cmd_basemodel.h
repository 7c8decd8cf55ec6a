// `rmkit basemodel VERB`: the verbs (analyze, presence, jsd, probe, table) register here, one file
// each (cmd_basemodel_*.cpp), each with its own declarative OptionSpec table.
#pragma once
#include <string>
#include <vector>

#include "command.h"
#include "rmkit/basemodel/table.h"

namespace rmkit::cli {

std::vector<Command>& basemodel_verbs();

struct BasemodelVerb {
  explicit BasemodelVerb(Command c) { basemodel_verbs().push_back(std::move(c)); }
};

// "a,b" "c" -> {a, b, c}: repeatable options that also accept comma-separated lists.
std::vector<std::string> split_list(const std::vector<std::string>& values);

// When --table T is given: T joined with `rows` on the model name, written to OUT/table.csv.
void merge_into_table(const Options& o, const basemodel::Table& rows, const std::string& out_dir);

}  // namespace rmkit::cli
