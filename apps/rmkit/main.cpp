// rmkit: one binary, one subcommand per file (cmd_*.cpp). See command.h.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "command.h"
#include "rmkit/core/cpu_env.h"
#include "rmkit/core/error.h"

namespace rmkit::cli {
std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}
}  // namespace rmkit::cli

using rmkit::cli::Command;

static void print_usage(std::ostream& os) {
  auto cmds = rmkit::cli::registry();
  std::sort(cmds.begin(), cmds.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  os << "usage: rmkit <command> [options]   (rmkit <command> --help for its options)\n\ncommands:\n";
  for (const auto& c : cmds) {
    os << "  " << c.name;
    for (size_t i = c.name.size(); i < 12; ++i) os << ' ';
    os << c.summary << "\n";
  }
}

int main(int argc, char** argv) {
  rmkit::apply_cpu_env(argc, argv);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    print_usage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  std::string name = argv[1];
  const Command* cmd = nullptr;
  for (const auto& c : rmkit::cli::registry())
    if (c.name == name) cmd = &c;
  if (!cmd) {
    std::cerr << "rmkit: unknown command '" << name << "' (run rmkit --help for the list)\n";
    return 2;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd->verbs) {  // `rmkit NAME VERB [options]`
    const Command* verb = nullptr;
    for (const auto& v : *cmd->verbs)
      if (!args.empty() && v.name == args[0]) verb = &v;
    if (!verb) {
      const bool help = !args.empty() && (args[0] == "--help" || args[0] == "-h");
      std::ostream& os = help ? std::cout : std::cerr;
      if (!args.empty() && !help) os << "rmkit " << name << ": unknown verb '" << args[0] << "'\n";
      os << "usage: rmkit " << name << " <verb> [options]   (rmkit " << name << " <verb> --help)\n\n"
         << cmd->summary << "\n\nverbs:\n";
      for (const auto& v : *cmd->verbs) os << "  " << v.name << std::string(v.name.size() < 10 ? 10 - v.name.size() : 1, ' ') << v.summary << "\n";
      return help ? 0 : 2;
    }
    name += " " + verb->name;
    cmd = verb;
    args.erase(args.begin());
  }
  try {
    auto opts = rmkit::Options::parse(args, cmd->options, cmd->positional);
    if (opts.help_requested()) {
      std::cout << rmkit::Options::help_text(name, cmd->summary, cmd->options, cmd->positional);
      return 0;
    }
    if (cmd->print_config) std::cerr << "rmkit " << name << " config: " << opts.effective().dump() << "\n";
    return cmd->run(opts);
  } catch (const rmkit::UsageError& e) {
    std::cerr << "rmkit " << name << ": " << rmkit::clip_text(e.what(), 1000) << "\n";  // bounded
    return 2;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    // keep it to one line: libtorch errors carry multi-line backtraces
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
    std::cerr << "rmkit " << name << ": error: " << rmkit::clip_text(msg, 1000) << "\n";  // bounded
    return 1;
  }
}
