// Declarative command-line options. Each subcommand declares one table of OptionSpec; that table
// drives parsing, `--help` (with defaults), `--config FILE.json` (same keys, without dashes) and the
// effective configuration printed at start.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rmkit {

enum class OptKind { String, Int, Float, Flag };

struct OptionSpec {
  std::string name;           // long name without dashes, e.g. "max-new-tokens"
  OptKind kind = OptKind::String;
  std::string default_value;  // "" = no default; flags default to "false"
  std::string help;
  bool required = false;
  bool repeatable = false;    // --data a --data b, or --data a b (values until the next --opt)
  // What values are valid, checked at parse time for the command line and --config alike:
  //   Int / Float: an interval "[lo,hi]", "(lo,hi)", "[lo,)" ... (either end may be open or empty);
  //                hi may be "N*cores" (N times the logical CPUs). Floats must always be finite and
  //                integers fit in 64 bits. An Int option named "threads" defaults to "[0,4*cores]".
  //   String:      choices "a|b|c".
  std::string valid;
};

class Options {
 public:
  // Parses argv (after the subcommand name). Throws UsageError naming the bad option.
  // `positional` names the keys that bare arguments fill in order (e.g. {"path"}).
  static Options parse(const std::vector<std::string>& args, const std::vector<OptionSpec>& specs,
                       const std::vector<std::string>& positional = {});

  bool has(const std::string& name) const;  // explicitly given or has a default
  bool given(const std::string& name) const; // explicitly given (cli or config file)
  std::string str(const std::string& name) const;
  // str() restricted to `allowed`; otherwise UsageError "--name: expected a, b or c, got 'x'".
  std::string choice(const std::string& name, const std::vector<std::string>& allowed) const;
  // Checks one value against its spec (type, finiteness, overflow, `valid`); throws UsageError
  // "<where>--name: expected ..., got 'v'". Called by parse() for every value.
  static void check_value(const OptionSpec& spec, const std::string& value, const std::string& where = "");
  std::vector<std::string> list(const std::string& name) const;
  long long integer(const std::string& name) const;
  double number(const std::string& name) const;
  bool flag(const std::string& name) const;
  bool help_requested() const { return help_; }

  // Effective configuration (every option with its value) as JSON.
  nlohmann::json effective() const;

  static std::string help_text(const std::string& command, const std::string& summary,
                               const std::vector<OptionSpec>& specs,
                               const std::vector<std::string>& positional = {});

 private:
  const OptionSpec& spec(const std::string& name) const;
  std::vector<OptionSpec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
  std::map<std::string, bool> given_;
  bool help_ = false;
};

}  // namespace rmkit
