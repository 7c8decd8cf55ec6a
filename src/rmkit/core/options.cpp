#include "rmkit/core/options.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/core/toml_lite.h"

namespace rmkit {
namespace {

std::string quote_value(const std::string& v) { return "'" + clip_text(v, 200) + "'"; }

// "4*cores" -> 4 x logical CPUs (at least 4); plain numbers as they are.
double bound_value(const std::string& b) {
  auto star = b.find("*cores");
  if (star != std::string::npos) {
    double k = std::strtod(b.substr(0, star).c_str(), nullptr);
    return k * std::max(1u, std::thread::hardware_concurrency());
  }
  return std::strtod(b.c_str(), nullptr);
}

std::string fmt_bound(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

struct Interval {
  bool has_lo = false, has_hi = false, lo_open = false, hi_open = false;
  double lo = 0, hi = 0;
  std::string describe() const {
    if (has_lo && !has_hi) return std::string(lo_open ? "> " : ">= ") + fmt_bound(lo);
    if (!has_lo && has_hi) return std::string(hi_open ? "< " : "<= ") + fmt_bound(hi);
    return std::string("in ") + (lo_open ? "(" : "[") + fmt_bound(lo) + ", " + fmt_bound(hi) + (hi_open ? ")" : "]");
  }
  bool contains(double v) const {
    if (has_lo && (lo_open ? !(v > lo) : !(v >= lo))) return false;
    if (has_hi && (hi_open ? !(v < hi) : !(v <= hi))) return false;
    return true;
  }
};

Interval parse_interval(const OptionSpec& s, const std::string& valid) {
  Interval iv;
  auto comma = valid.find(',');
  if (valid.size() < 3 || (valid.front() != '[' && valid.front() != '(') ||
      (valid.back() != ']' && valid.back() != ')') || comma == std::string::npos)
    throw UsageError("internal: option --" + s.name + " has a malformed range '" + valid + "'");
  iv.lo_open = valid.front() == '(';
  iv.hi_open = valid.back() == ')';
  std::string lo = valid.substr(1, comma - 1), hi = valid.substr(comma + 1, valid.size() - comma - 2);
  if (!lo.empty()) iv.has_lo = true, iv.lo = bound_value(lo);
  if (!hi.empty()) iv.has_hi = true, iv.hi = bound_value(hi);
  return iv;
}

std::string effective_valid(const OptionSpec& s) {
  if (s.valid.empty() && s.kind == OptKind::Int && s.name == "threads") return "[0,4*cores]";
  return s.valid;
}

std::vector<std::string> split_choices(const std::string& v) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    auto bar = v.find('|', start);
    out.push_back(v.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return out;
}

std::string choice_list(const std::vector<std::string>& allowed) {
  std::string list;
  for (size_t i = 0; i < allowed.size(); ++i)
    list += (i == 0 ? "" : i + 1 == allowed.size() ? " or " : ", ") + allowed[i];
  return list;
}

std::string json_to_value(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  return j.dump();
}

}  // namespace

void Options::check_value(const OptionSpec& s, const std::string& v, const std::string& where) {
  const std::string name = where + "--" + s.name;
  const std::string valid = effective_valid(s);
  char* end = nullptr;
  if (s.kind == OptKind::Int) {
    errno = 0;
    long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end) throw UsageError(name + ": expected an integer, got " + quote_value(v));
    if (errno == ERANGE) throw UsageError(name + ": " + quote_value(v) + " is out of range for a 64-bit integer");
    if (!valid.empty()) {
      Interval iv = parse_interval(s, valid);
      if (!iv.contains(static_cast<double>(x)))
        throw UsageError(name + ": expected an integer " + iv.describe() + ", got " + quote_value(v));
    }
  } else if (s.kind == OptKind::Float) {
    double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end) throw UsageError(name + ": expected a number, got " + quote_value(v));
    if (!std::isfinite(x)) throw UsageError(name + ": expected a finite number, got " + quote_value(v));
    if (!valid.empty()) {
      Interval iv = parse_interval(s, valid);
      if (!iv.contains(x)) throw UsageError(name + ": expected a number " + iv.describe() + ", got " + quote_value(v));
    }
  } else if (s.kind == OptKind::Flag) {
    if (v != "true" && v != "false") throw UsageError(name + ": expected true or false, got " + quote_value(v));
  } else if (!valid.empty()) {
    auto allowed = split_choices(valid);
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
      throw UsageError(name + ": expected " + choice_list(allowed) + ", got " + quote_value(v));
  }
}

const OptionSpec& Options::spec(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return s;
  throw UsageError("internal: option --" + name + " is not declared");
}

Options Options::parse(const std::vector<std::string>& args, const std::vector<OptionSpec>& specs,
                       const std::vector<std::string>& positional) {
  Options o;
  o.specs_ = specs;
  auto find = [&](const std::string& n) -> const OptionSpec* {
    for (const auto& s : o.specs_)
      if (s.name == n) return &s;
    return nullptr;
  };
  std::map<std::string, std::vector<std::string>> cli;
  std::string config_path;
  size_t next_pos = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") { o.help_ = true; continue; }
    if (a == "--" && find("command") && find("command")->repeatable) {  // rmkit launch ... -- CMD ARGS
      cli["command"] = std::vector<std::string>(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      std::string name = a.substr(2), value;
      bool has_eq = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_eq = true;
      }
      if (name == "config") {
        if (!has_eq) {
          if (i + 1 >= args.size()) throw UsageError("--config: expected a file path");
          value = args[++i];
        }
        config_path = value;
        continue;
      }
      const OptionSpec* s = find(name);
      if (!s) throw UsageError("unknown option --" + name + " (see --help)");
      if (s->kind == OptKind::Flag) {
        if (!has_eq) value = "true";
        check_value(*s, value, "");
        cli[name] = {value};
        continue;
      }
      if (!has_eq) {
        if (i + 1 >= args.size()) throw UsageError("--" + name + ": expected a value");
        value = args[++i];
      }
      check_value(*s, value, "");
      auto& vs = cli[name];
      if (!s->repeatable) vs.clear();
      vs.push_back(value);
      if (s->repeatable)  // --data a b c
        while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) vs.push_back(args[++i]);
      continue;
    }
    if (next_pos >= positional.size()) throw UsageError("unexpected argument '" + a + "'");
    const std::string& pname = positional[next_pos++];
    const OptionSpec* s = find(pname);
    if (!s) throw UsageError("internal: positional '" + pname + "' is not declared");
    cli[pname] = {a};
  }
  // config file first, then command line overrides it
  if (!config_path.empty()) {
    nlohmann::json cfg;
    const bool toml = config_path.size() > 5 && config_path.compare(config_path.size() - 5, 5, ".toml") == 0;
    if (toml) {
      try {
        cfg = parse_toml_flat(read_file(config_path), config_path);
      } catch (const FormatError& e) {
        throw UsageError(e.what());
      }
    } else {
      try {
        cfg = nlohmann::json::parse(read_file(config_path));
      } catch (const nlohmann::json::exception& e) {
        throw UsageError(config_path + ": invalid JSON: " + e.what());
      }
    }
    if (!cfg.is_object()) throw UsageError(config_path + ": expected a JSON object of option keys");
    for (auto it = cfg.begin(); it != cfg.end(); ++it) {
      std::string key = it.key();
      for (auto& c : key) if (c == '_') c = '-';
      const OptionSpec* s = find(key);
      if (!s) throw UsageError(config_path + ": unknown key '" + it.key() + "' (see --help)");
      std::vector<std::string> vals;
      if (it.value().is_array() && s->repeatable) {
        for (const auto& v : it.value()) vals.push_back(json_to_value(v));
      } else {
        vals.push_back(json_to_value(it.value()));
      }
      for (const auto& v : vals) check_value(*s, v, config_path + ": ");
      o.values_[key] = vals;
      o.given_[key] = true;
    }
  }
  for (auto& [k, v] : cli) {
    o.values_[k] = v;
    o.given_[k] = true;
  }
  for (const auto& s : o.specs_) {
    if (o.values_.count(s.name)) continue;
    if (s.kind == OptKind::Flag) o.values_[s.name] = {s.default_value.empty() ? "false" : s.default_value};
    else if (!s.default_value.empty()) o.values_[s.name] = {s.default_value};
  }
  if (!o.help_)
    for (const auto& s : o.specs_)
      if (s.required && !o.values_.count(s.name)) throw UsageError("missing required option --" + s.name);
  return o;
}

bool Options::has(const std::string& name) const { spec(name); return values_.count(name) > 0; }
bool Options::given(const std::string& name) const { spec(name); return given_.count(name) > 0; }

std::string Options::str(const std::string& name) const {
  spec(name);
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) throw UsageError("missing option --" + name);
  return it->second.back();
}

std::string Options::choice(const std::string& name, const std::vector<std::string>& allowed) const {
  std::string v = str(name);
  for (const auto& a : allowed)
    if (v == a) return v;
  throw UsageError("--" + name + ": expected " + choice_list(allowed) + ", got " + rmkit::quote_value(v));
}

std::vector<std::string> Options::list(const std::string& name) const {
  spec(name);
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

long long Options::integer(const std::string& name) const { return std::strtoll(str(name).c_str(), nullptr, 10); }
double Options::number(const std::string& name) const { return std::strtod(str(name).c_str(), nullptr); }
bool Options::flag(const std::string& name) const { return has(name) && str(name) == "true"; }

nlohmann::json Options::effective() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& s : specs_) {
    auto it = values_.find(s.name);
    if (it == values_.end()) { j[s.name] = nullptr; continue; }
    if (s.repeatable) { j[s.name] = it->second; continue; }
    const std::string& v = it->second.back();
    switch (s.kind) {
      case OptKind::Int: j[s.name] = std::strtoll(v.c_str(), nullptr, 10); break;
      case OptKind::Float: j[s.name] = std::strtod(v.c_str(), nullptr); break;
      case OptKind::Flag: j[s.name] = (v == "true"); break;
      default: j[s.name] = v;
    }
  }
  return j;
}

std::string Options::help_text(const std::string& command, const std::string& summary,
                               const std::vector<OptionSpec>& specs,
                               const std::vector<std::string>& positional) {
  std::ostringstream os;
  os << "usage: rmkit " << command;
  for (const auto& p : positional) os << " [" << p << "]";
  os << " [options]\n\n" << summary << "\n\noptions:\n";
  for (const auto& s : specs) {
    std::string left = "  --" + s.name;
    if (s.kind == OptKind::Int) left += " N";
    else if (s.kind == OptKind::Float) left += " X";
    else if (s.kind == OptKind::String) left += s.repeatable ? " V..." : " V";
    os << left;
    for (size_t i = left.size(); i < 30; ++i) os << ' ';
    os << ' ' << s.help;
    if (s.required) os << " (required)";
    else if (!s.default_value.empty() && s.kind != OptKind::Flag) {
      os << " [default: " << s.default_value << "]";
      const std::string valid = effective_valid(s);
      if (!valid.empty() && s.kind != OptKind::String) os << " (" << parse_interval(s, valid).describe() << ")";
    }
    os << "\n";
  }
  os << "  --config FILE.json|FILE.toml   read option values from a JSON object or flat TOML (same keys)\n";
  os << "  -h, --help                     show this help\n";
  return os.str();
}

}  // namespace rmkit
