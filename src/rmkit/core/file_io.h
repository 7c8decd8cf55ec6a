// File helpers shared by every area: whole-file reads, gzip-transparent line reading, atomic writes
// (temp file + rename, so an interrupted write never leaves a half-written output) and asset lookup.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace rmkit {

// Reads a whole file (binary). Throws IoError naming the path.
std::string read_file(const std::string& path);

// Calls fn(line, line_number) for each line of a text file; files ending in .gz are decompressed.
// Line numbers start at 1. A trailing '\r' is stripped. Return false from fn to stop early.
// A .gz stream that ends without its end-of-stream marker and trailer throws IoError "truncated
// gzip file" (before the half line it may end with is passed on).
void for_each_line(const std::string& path,
                   const std::function<bool(const std::string& line, size_t line_no)>& fn);

// Writes `data` to `path` atomically: writes path + ".tmp.<pid>", fsyncs, renames over path.
void write_file_atomic(const std::string& path, const std::string& data);

// Streaming writer with the same guarantee: content goes to a temp file; commit() renames it into
// place. If the object is destroyed without commit() (e.g. an exception), the temp file is removed
// and any previous file at `path` is left untouched.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  void write(const void* data, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Stale temps of atomic writes to `path`: removes "<path>.tmp.<pid>" files whose writer process no
// longer exists (an interrupted write). Returns the removed paths.
std::vector<std::string> remove_stale_temps(const std::string& path);
// The same for every file of `dir` ("*.tmp.<pid>" of any name).
std::vector<std::string> remove_stale_temps_in(const std::string& dir);
// The pid in an rmkit temp name ("NAME.tmp.<pid>" file or ".NAME.tmp-<pid>" directory), else 0.
long rmkit_temp_pid(const std::string& name);

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
void make_dirs(const std::string& path);
std::string join_path(const std::string& a, const std::string& b);
std::string file_name(const std::string& path);   // last component
std::string parent_dir(const std::string& path);

// Root of the shared assets: $RMKIT_ASSETS, else ../shared/assets relative to the current
// directory, else relative to the source tree (compile-time RMKIT_SOURCE_DIR when defined).
std::string assets_dir();
// assets_dir() joined with `rel`.
std::string asset_path(const std::string& rel);

// Hex digest (FNV-1a 64) used for data hashes in saved metadata.
std::string fnv1a_hex(const std::string& data, uint64_t seed = 1469598103934665603ULL);

}  // namespace rmkit
