#include "rmkit/basemodel/table.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"

namespace rmkit::basemodel {

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t')) ++a;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) --b;
  return s.substr(a, b - a);
}

// Splits one CSV line; cols receives the 1-based character column where each cell starts.
std::vector<std::string> split_csv_line(const std::string& line, const std::string& where,
                                        std::vector<size_t>* cols) {
  std::vector<std::string> out;
  size_t i = 0;
  while (true) {
    cols->push_back(i + 1);
    std::string cell;
    if (i < line.size() && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            cell += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        cell += line[i++];
      }
      if (!closed)
        throw FormatError(where + ":" + std::to_string(cols->back()) +
                          ": unterminated quoted cell (quoted cells may not span lines)");
      if (i < line.size() && line[i] != ',')
        throw FormatError(where + ":" + std::to_string(i + 1) + ": expected ',' after a quoted cell");
    } else {
      while (i < line.size() && line[i] != ',') cell += line[i++];
      cell = trim(cell);
    }
    out.push_back(cell);
    if (i >= line.size()) break;
    ++i;  // the comma
  }
  return out;
}

std::string stem_of(const std::string& path) {
  std::string n = file_name(path);
  for (const char* ext : {".gz", ".jsonl", ".json", ".csv"})
    if (ends_with(n, ext) && n.size() > std::string(ext).size()) n.resize(n.size() - std::string(ext).size());
  return n;
}

std::string json_cell(const nlohmann::json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number()) {
    std::ostringstream o;
    o.precision(17);
    o << v.get<double>();
    return o.str();
  }
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

}  // namespace

bool is_missing_cell(const std::string& s) {
  static const std::set<std::string> kMissing = {"", "NA", "N/A", "NaN", "nan", "null", "None", "n/a"};
  return kMissing.count(s) > 0;
}

std::optional<size_t> Table::find(const std::string& column) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == column) return i;
  return std::nullopt;
}

size_t Table::index(const std::string& column) const {
  if (auto i = find(column)) return *i;
  std::string all;
  for (const auto& c : columns) all += (all.empty() ? "" : ", ") + c;
  throw UsageError((source.empty() ? std::string("table") : source) + ": no column '" + column +
                   "' (columns: " + all + ")");
}

std::string Table::where(size_t row, size_t column) const {
  if (row < cell_origin.size() && column < cell_origin[row].size() && !cell_origin[row][column].empty())
    return cell_origin[row][column];
  std::string s = source.empty() ? "table" : source;
  if (row < line.size() && line[row] > 0) s += ":" + std::to_string(line[row]);
  else s += ": row " + std::to_string(row + 1);
  if (row < cell_column.size() && column < cell_column[row].size() && cell_column[row][column] > 0)
    s += ":" + std::to_string(cell_column[row][column]);
  return s;
}

std::optional<double> Table::number(size_t row, size_t column) const {
  const std::string& s = cells.at(row).at(column);
  if (is_missing_cell(s)) return std::nullopt;
  const char* b = s.c_str();
  char* e = nullptr;
  double v = std::strtod(b, &e);
  if (e == b || *e != '\0' || !std::isfinite(v))
    throw FormatError(where(row, column) + ": column '" + columns[column] + "': expected a number, got '" + s + "'");
  return v;
}

bool Table::is_numeric(size_t column) const {
  bool any = false;
  for (size_t r = 0; r < rows(); ++r) {
    const std::string& s = cells[r][column];
    if (is_missing_cell(s)) continue;
    const char* b = s.c_str();
    char* e = nullptr;
    double v = std::strtod(b, &e);
    if (e == b || *e != '\0' || !std::isfinite(v)) return false;
    any = true;
  }
  return any;
}

Table parse_csv(const std::string& text, const std::string& source) {
  Table t;
  t.source = source;
  std::istringstream in(text);
  std::string line;
  size_t no = 0;
  bool header = false;
  while (std::getline(in, line)) {
    ++no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line[0] == '#') {
      std::string c = line.substr(1);
      if (!c.empty() && c[0] == ' ') c.erase(0, 1);
      t.comments.push_back(c);
      continue;
    }
    if (trim(line).empty()) continue;
    const std::string where = source + ":" + std::to_string(no);
    std::vector<size_t> cols;
    auto cells = split_csv_line(line, where, &cols);
    if (!header) {
      std::set<std::string> seen;
      for (size_t i = 0; i < cells.size(); ++i) {
        if (cells[i].empty()) throw FormatError(where + ":" + std::to_string(cols[i]) + ": empty column name in the header");
        if (!seen.insert(cells[i]).second)
          throw FormatError(where + ":" + std::to_string(cols[i]) + ": duplicate column '" + cells[i] + "'");
      }
      t.columns = cells;
      header = true;
      continue;
    }
    if (cells.size() != t.columns.size())
      throw FormatError(where + ": expected " + std::to_string(t.columns.size()) + " cells (as in the header), got " +
                        std::to_string(cells.size()));
    t.cells.push_back(std::move(cells));
    t.cell_column.push_back(std::move(cols));
    t.line.push_back(no);
  }
  if (!header) throw FormatError(source + ": no header line (the first line that is not a '#' comment)");
  return t;
}

Table read_table(const std::string& path) {
  if (!path_exists(path)) throw IoError(path + ": no such file");
  const bool jsonl = ends_with(path, ".jsonl") || ends_with(path, ".jsonl.gz") || ends_with(path, ".json");
  if (!jsonl) {
    std::string text;
    for_each_line(path, [&](const std::string& l, size_t) {
      text += l;
      text += '\n';
      return true;
    });
    return parse_csv(text, path);
  }
  Table t;
  t.source = path;
  std::vector<std::pair<size_t, nlohmann::json>> rows;
  for_each_line(path, [&](const std::string& l, size_t no) {
    if (trim(l).empty() || l[0] == '#') return true;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(l);
    } catch (const std::exception& e) {
      throw FormatError(path + ":" + std::to_string(no) + ": not a JSON object (" + e.what() + ")");
    }
    if (!j.is_object()) throw FormatError(path + ":" + std::to_string(no) + ": expected a JSON object per line");
    for (auto it = j.begin(); it != j.end(); ++it)
      if (!t.find(it.key())) t.columns.push_back(it.key());
    rows.emplace_back(no, std::move(j));
    return true;
  });
  // cell columns: where the key's value starts in the raw line (best effort)
  std::map<size_t, std::string> raw;
  for_each_line(path, [&](const std::string& l, size_t no) {
    raw[no] = l;
    return true;
  });
  for (auto& [no, j] : rows) {
    std::vector<std::string> cells(t.columns.size());
    std::vector<size_t> cols(t.columns.size(), 0);
    for (size_t c = 0; c < t.columns.size(); ++c) {
      auto it = j.find(t.columns[c]);
      if (it == j.end()) continue;
      if (it->is_object() || it->is_array())
        throw FormatError(path + ":" + std::to_string(no) + ": field '" + t.columns[c] + "': expected a number or a string");
      cells[c] = json_cell(*it);
      const std::string& l = raw[no];
      size_t k = l.find(nlohmann::json(t.columns[c]).dump());
      if (k != std::string::npos) {
        k = l.find(':', k);
        if (k != std::string::npos) {
          ++k;
          while (k < l.size() && l[k] == ' ') ++k;
          cols[c] = k + 1;
        }
      }
    }
    t.cells.push_back(std::move(cells));
    t.cell_column.push_back(std::move(cols));
    t.line.push_back(no);
  }
  return t;
}

std::string to_csv(const Table& t) {
  auto quote = [](const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos && (s.empty() || s[0] != '#')) return s;
    std::string q = "\"";
    for (char ch : s) {
      if (ch == '"') q += '"';
      q += ch;
    }
    return q + "\"";
  };
  std::string out;
  for (const auto& c : t.comments) out += "# " + c + "\n";
  for (size_t i = 0; i < t.columns.size(); ++i) out += (i ? "," : "") + quote(t.columns[i]);
  out += "\n";
  for (const auto& row : t.cells) {
    for (size_t i = 0; i < row.size(); ++i) out += (i ? "," : "") + quote(row[i]);
    out += "\n";
  }
  return out;
}

Table merge_tables(const std::vector<Table>& tables, const std::string& name_column, MergeReport* report) {
  Table m;
  m.columns.push_back(name_column);
  std::vector<std::string> order;
  std::map<std::string, size_t> row_of;
  std::vector<std::vector<size_t>> col_map(tables.size());  // table column -> merged column
  std::vector<std::set<std::string>> names(tables.size());
  MergeReport rep;
  rep.missing_from.resize(tables.size());
  for (size_t ti = 0; ti < tables.size(); ++ti) {
    const Table& t = tables[ti];
    const size_t nc = t.index(name_column);
    col_map[ti].assign(t.columns.size(), SIZE_MAX);
    for (size_t c = 0; c < t.columns.size(); ++c) {
      if (c == nc) continue;
      std::string name = t.columns[c];
      if (m.find(name)) {
        std::string renamed = name + "." + stem_of(t.source);
        for (int k = 2; m.find(renamed); ++k) renamed = name + "." + stem_of(t.source) + std::to_string(k);
        rep.renamed.push_back(name + " (" + file_name(t.source) + ") -> " + renamed);
        name = renamed;
      }
      col_map[ti][c] = m.columns.size();
      m.columns.push_back(name);
    }
    for (size_t r = 0; r < t.rows(); ++r) {
      const std::string& n = t.cells[r][nc];
      if (is_missing_cell(n)) throw FormatError(t.where(r, nc) + ": empty model name");
      if (!names[ti].insert(n).second) throw FormatError(t.where(r, nc) + ": duplicate model name '" + n + "'");
      if (!row_of.count(n)) {
        row_of[n] = order.size();
        order.push_back(n);
      }
    }
    m.comments.push_back("merged from " + t.source + " (" + std::to_string(t.rows()) + " rows)");
  }
  m.cells.assign(order.size(), std::vector<std::string>(m.columns.size()));
  m.cell_origin.assign(order.size(), std::vector<std::string>(m.columns.size()));
  for (size_t r = 0; r < order.size(); ++r) m.cells[r][0] = order[r];
  for (size_t ti = 0; ti < tables.size(); ++ti) {
    const Table& t = tables[ti];
    const size_t nc = t.index(name_column);
    for (size_t r = 0; r < t.rows(); ++r) {
      auto& row = m.cells[row_of[t.cells[r][nc]]];
      auto& origin = m.cell_origin[row_of[t.cells[r][nc]]];
      for (size_t c = 0; c < t.columns.size(); ++c)
        if (col_map[ti][c] != SIZE_MAX) {
          row[col_map[ti][c]] = t.cells[r][c];
          origin[col_map[ti][c]] = t.where(r, c);
        }
    }
  }
  for (const auto& n : order) {
    size_t count = 0;
    for (size_t ti = 0; ti < tables.size(); ++ti) {
      if (names[ti].count(n)) ++count;
      else rep.missing_from[ti].push_back(n);
    }
    if (tables.size() > 1 && count == 1) rep.in_one_table_only.push_back(n);
  }
  m.line.assign(m.rows(), 0);
  m.cell_column.assign(m.rows(), {});
  if (report) *report = std::move(rep);
  return m;
}

}  // namespace rmkit::basemodel
