// Model tables for base-model selection: one row per candidate model, a name column, numeric
// feature columns and optional target columns. Torch-free.
//
// Formats: CSV (RFC 4180 quoting, '#' comment lines anywhere, first non-comment line = header) and
// JSONL (one object per line; keys become columns in order of first appearance). A cell is
// missing when it is empty or one of NA, N/A, NaN, nan, null, None (JSON null too). A cell that is
// present but not a number, where a number is needed, is a FormatError "file:line:column: ...".
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace rmkit::basemodel {

struct Table {
  std::string source;                              // path read from ("" when built in memory)
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> cells;     // [row][column], raw text ("" = missing)
  std::vector<size_t> line;                        // 1-based source line of each row (0 = none)
  std::vector<std::vector<size_t>> cell_column;    // 1-based character column of each cell (0 = none)
  std::vector<std::string> comments;               // '#' lines, without the leading '#'
  // merged tables: "file:line:column" each cell came from ("" = none); where() prefers it
  std::vector<std::vector<std::string>> cell_origin;

  size_t rows() const { return cells.size(); }
  // Index of a column; nullopt when absent.
  std::optional<size_t> find(const std::string& column) const;
  // Index of a column; throws UsageError naming the file and the available columns when absent.
  size_t index(const std::string& column) const;
  // Numeric value of a cell: nullopt when missing; FormatError "file:line:column: column 'c':
  // expected a number, got 'x'" when present but not a finite number.
  std::optional<double> number(size_t row, size_t column) const;
  // "file:line:column" of a cell (for messages).
  std::string where(size_t row, size_t column) const;
  // True when every non-missing cell of the column parses as a number (and at least one exists).
  bool is_numeric(size_t column) const;
};

bool is_missing_cell(const std::string& s);

// Reads a .csv or .jsonl/.json (one object per line) table; the format comes from the extension
// (".jsonl", ".jsonl.gz", ".json" = JSONL; anything else CSV). Throws IoError / FormatError.
Table read_table(const std::string& path);
Table parse_csv(const std::string& text, const std::string& source);

// CSV text (quoted where needed), with `comments` as leading '# ' lines.
std::string to_csv(const Table& t);

struct MergeReport {
  // names present in exactly one of the tables (when there are two or more)
  std::vector<std::string> in_one_table_only;
  // for each input table, the names of the merged table it lacks
  std::vector<std::vector<std::string>> missing_from;
  // columns renamed because an earlier table had the same column: "old -> new"
  std::vector<std::string> renamed;
};

// Outer join on the name column: rows in order of first appearance, columns of the first table
// then each further table's columns (a clashing column of a later table is renamed
// "<column>.<file stem>"). Throws FormatError on a duplicate or empty name within one table.
Table merge_tables(const std::vector<Table>& tables, const std::string& name_column, MergeReport* report);

}  // namespace rmkit::basemodel
