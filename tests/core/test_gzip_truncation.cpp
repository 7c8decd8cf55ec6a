// A .gz file that ends before its end-of-stream marker and trailer is an error (issue 18): cut at a
// line boundary it used to read as a shorter file, cut mid-line as one bad row. for_each_line and
// read_prefs report "truncated gzip file" whatever skip_bad says.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/data/readers.h"
#include "test_util.h"

namespace rmkit {
namespace {

std::string row(int i) {
  return "{\"prompt\": \"question " + std::to_string(i) + "\", \"chosen\": \"good answer " + std::to_string(i) +
         "\", \"rejected\": \"bad answer " + std::to_string(i) + "\"}\n";
}

// Writes 20 rows gzip-compressed with a sync flush after row 10; returns the compressed offset of
// that flush point (a cut there decompresses to exactly rows 1-10).
long write_gz(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "wb");
  long boundary = 0;
  for (int i = 1; i <= 20; ++i) {
    std::string r = row(i);
    gzwrite(gz, r.data(), static_cast<unsigned>(r.size()));
    if (i == 10) {
      gzflush(gz, Z_SYNC_FLUSH);
      boundary = gzoffset(gz);
    }
  }
  gzclose(gz);
  return boundary;
}

std::string cut(const std::string& src, size_t n, const std::string& dst) {
  write_file_atomic(dst, read_file(src).substr(0, n));
  return dst;
}

size_t count_lines(const std::string& path) {
  size_t n = 0;
  for_each_line(path, [&](const std::string&, size_t) { return ++n, true; });
  return n;
}

void expect_truncated(const std::string& path) {
  try {
    count_lines(path);
    ADD_FAILURE() << path << ": read without error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated gzip file"), std::string::npos) << e.what();
  }
  for (bool skip : {false, true}) {
    try {
      data::read_prefs(path, "auto", skip);
      ADD_FAILURE() << path << ": read_prefs without error (skip_bad " << skip << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("truncated gzip file"), std::string::npos) << e.what();
    }
  }
}

TEST(GzipTruncation, CompleteFileReadsEveryRow) {
  std::string dir = testing::temp_dir("gz");
  std::string full = join_path(dir, "full.jsonl.gz");
  write_gz(full);
  EXPECT_EQ(count_lines(full), 20u);
  data::ReadStats st;
  EXPECT_EQ(data::read_prefs(full, "auto", false, &st).size(), 20u);
  std::filesystem::remove_all(dir);
}

TEST(GzipTruncation, CutAtALineBoundaryMidLineOrInTheTrailerIsAnError) {
  std::string dir = testing::temp_dir("gz");
  std::string full = join_path(dir, "full.jsonl.gz");
  long boundary = write_gz(full);
  const size_t size = read_file(full).size();
  ASSERT_GT(boundary, 0);
  expect_truncated(cut(full, static_cast<size_t>(boundary), join_path(dir, "boundary.jsonl.gz")));
  expect_truncated(cut(full, static_cast<size_t>(boundary) + 17, join_path(dir, "midline.jsonl.gz")));
  expect_truncated(cut(full, size - 3, join_path(dir, "trailer.jsonl.gz")));  // CRC32 + ISIZE cut
  expect_truncated(cut(full, size - 8, join_path(dir, "notrailer.jsonl.gz")));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rmkit
