#include "rmkit/core/file_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rmkit/core/error.h"

namespace rmkit {
namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open for reading: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(path + ": read failed");
  return ss.str();
}

static bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

void for_each_line(const std::string& path,
                   const std::function<bool(const std::string&, size_t)>& fn) {
  gzFile gz = gzopen(path.c_str(), "rb");  // zlib reads plain files transparently too
  if (!gz) throw IoError(path + ": cannot open for reading: " + std::strerror(errno));
  gzbuffer(gz, 1 << 20);
  std::string line, pending;
  std::vector<char> buf(1 << 20);
  size_t line_no = 0;
  bool stop = false;
  while (!stop) {
    int n = gzread(gz, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(gz, &err);
      gzclose(gz);
      throw IoError(path + ": read failed after line " + std::to_string(line_no) + ": " + msg);
    }
    if (n == 0) {
      // zlib reports a stream that stops before its end-of-stream marker and trailer as a soft
      // Z_BUF_ERROR ("unexpected end of file") and returns what it could decompress: a cut file
      // would otherwise read as a shorter one (or end in a half line).
      int err = Z_OK;
      gzerror(gz, &err);
      if (err == Z_BUF_ERROR) {
        gzclose(gz);
        throw IoError(path + ": truncated gzip file (the compressed stream ends after line " +
                      std::to_string(line_no) + " without its end marker and trailer; re-download or "
                      "re-compress it)");
      }
      break;
    }
    size_t start = 0;
    for (int i = 0; i < n; ++i) {
      if (buf[i] == '\n') {
        pending.append(buf.data() + start, i - start);
        if (!pending.empty() && pending.back() == '\r') pending.pop_back();
        if (!fn(pending, ++line_no)) { stop = true; break; }
        pending.clear();
        start = i + 1;
      }
    }
    if (!stop) pending.append(buf.data() + start, n - start);
  }
  if (!stop && !pending.empty()) {
    if (pending.back() == '\r') pending.pop_back();
    fn(pending, ++line_no);
  }
  gzclose(gz);
  (void)ends_with;
}

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd_ < 0) throw IoError(path_ + ": cannot create temp file " + tmp_ + ": " + std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw IoError(path_ + ": write failed: " + std::strerror(errno) + " (the partial temp file is removed)");
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFileWriter::commit() {
  if (::fsync(fd_) != 0) throw IoError(path_ + ": write failed at fsync: " + std::strerror(errno));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw IoError(path_ + ": write failed at close: " + std::strerror(errno));
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    throw IoError(path_ + ": rename from " + tmp_ + " failed: " + std::strerror(errno));
  committed_ = true;
}

void write_file_atomic(const std::string& path, const std::string& data) {
  AtomicFileWriter w(path);
  w.write(data);
  w.commit();
}

namespace {

// pid of an rmkit temp name: "NAME.tmp.<pid>" (AtomicFileWriter) or ".NAME.tmp-<pid>" (temp
// directories of model and checkpoint saves); 0 when `name` is not one.
long temp_pid(const std::string& name) {
  size_t p = name.rfind(".tmp.");
  size_t q = name.rfind(".tmp-");
  size_t at = std::string::npos;
  if (p != std::string::npos && (q == std::string::npos || p > q)) at = p;
  else if (q != std::string::npos && name.size() > 1 && name[0] == '.') at = q;
  if (at == std::string::npos || at == 0) return 0;
  std::string digits = name.substr(at + 5);
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::strtol(digits.c_str(), nullptr, 10);
}

}  // namespace

long rmkit_temp_pid(const std::string& name) { return temp_pid(name); }

namespace {

// Removes the "<prefix>...tmp.<pid>" files in `dir` whose writer process no longer exists.
std::vector<std::string> remove_dead_file_temps(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return removed;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) != 0 || n.find(".tmp.") == std::string::npos) continue;
    long pid = temp_pid(n);
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // its writer may still run
    if (fs::remove(e.path(), ec)) removed.push_back(e.path().string());
  }
  return removed;
}

}  // namespace

std::vector<std::string> remove_stale_temps(const std::string& path) {
  return remove_dead_file_temps(parent_dir(path).empty() ? "." : parent_dir(path), file_name(path) + ".tmp.");
}

std::vector<std::string> remove_stale_temps_in(const std::string& dir) { return remove_dead_file_temps(dir, ""); }

bool path_exists(const std::string& path) { return fs::exists(path); }
bool is_directory(const std::string& path) { return fs::is_directory(path); }
void make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw IoError(path + ": cannot create directory: " + ec.message());
}
std::string join_path(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  return (fs::path(a) / b).string();
}
std::string file_name(const std::string& path) { return fs::path(path).filename().string(); }
std::string parent_dir(const std::string& path) { return fs::path(path).parent_path().string(); }

std::string assets_dir() {
  if (const char* env = std::getenv("RMKIT_ASSETS"); env && *env) return env;
  for (const char* cand : {"../shared/assets", "../../shared/assets", "../../../shared/assets"}) {
    if (fs::is_directory(cand)) return fs::absolute(cand).lexically_normal().string();
  }
#ifdef RMKIT_SOURCE_DIR
  std::string src = std::string(RMKIT_SOURCE_DIR) + "/../shared/assets";
  if (fs::is_directory(src)) return fs::path(src).lexically_normal().string();
#endif
  return "../shared/assets";
}

std::string asset_path(const std::string& rel) { return join_path(assets_dir(), rel); }

std::string fnv1a_hex(const std::string& data, uint64_t h) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace rmkit
