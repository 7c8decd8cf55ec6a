// Subcommand registry: every apps/rmkit/cmd_*.cpp registers one Command with a static
// CommandRegistrar. main.cpp dispatches, prints --help from the option table and maps errors to exit
// codes (UsageError -> 2, other rmkit::Error / std::exception -> 1), always as one line.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "rmkit/core/options.h"

namespace rmkit::cli {

struct Command {
  std::string name;
  std::string summary;
  std::vector<OptionSpec> options;
  std::vector<std::string> positional;  // option names filled by bare arguments
  std::function<int(const Options&)> run;
  bool print_config = false;            // print the effective config to stderr at start
  // When set: `rmkit NAME VERB [options]`, each verb a Command of its own (options, help, run).
  // A pointer to a registry filled by static registrars (read at dispatch, after static init).
  const std::vector<Command>* verbs = nullptr;
};

std::vector<Command>& registry();

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { registry().push_back(std::move(c)); }
};

}  // namespace rmkit::cli
