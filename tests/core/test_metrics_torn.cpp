// A metrics.jsonl whose last line was torn by a kill mid-write (no final newline, invalid JSON) is
// read without that line and with a warning; resume truncation drops it (issue 18). A bad line
// elsewhere stays an error.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/core/metrics_log.h"
#include "test_util.h"

namespace rmkit {
namespace {

void write_raw(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

TEST(MetricsTorn, IncompleteFinalLineIsIgnoredWithAWarning) {
  std::string dir = testing::temp_dir("torn");
  std::string p = join_path(dir, "metrics.jsonl");
  write_raw(p, "{\"step\":1,\"loss\":0.7}\n{\"step\":2,\"loss\":0.6}\n{\"step\":3,\"lo");
  std::vector<std::string> warnings;
  auto recs = MetricsLog::read(p, &warnings);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1]["step"], 2);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("incomplete"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find(":3"), std::string::npos) << warnings[0];
  // resume: the torn line goes, the file ends with a newline again
  EXPECT_EQ(MetricsLog::truncate_after_step(p, 2), 0u);
  EXPECT_EQ(read_file(p), "{\"loss\":0.7,\"step\":1}\n{\"loss\":0.6,\"step\":2}\n");
  // a bad line that is not the last one is still an error
  write_raw(p, "{\"step\":1}\n{\"st\n{\"step\":3}\n");
  EXPECT_THROW(MetricsLog::read(p), FormatError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rmkit
