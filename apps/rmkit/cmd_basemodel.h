// `rmkit basemodel VERB`: the verbs (analyze, presence, jsd, probe, table) register here, one file
// each (cmd_basemodel_*.cpp), each with its own declarative OptionSpec table.
#pragma once
#include <string>
#include <vector>

#include "command.h"

namespace rmkit::cli {

std::vector<Command>& basemodel_verbs();

struct BasemodelVerb {
  explicit BasemodelVerb(Command c) { basemodel_verbs().push_back(std::move(c)); }
};

// "a,b" "c" -> {a, b, c}: repeatable options that also accept comma-separated lists.
std::vector<std::string> split_list(const std::vector<std::string>& values);

}  // namespace rmkit::cli
