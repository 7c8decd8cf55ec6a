// Helpers shared by tests: asset paths, skipping when the shared assets are absent, temp dirs, and
// running the rmkit binary.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "rmkit/core/file_io.h"

namespace rmkit::testing {

inline std::string asset(const std::string& rel) { return rmkit::asset_path(rel); }

// Fails (not skips) when assets are missing: CI always has ../shared beside the clone.
#define RMKIT_REQUIRE_ASSET(path) \
  ASSERT_TRUE(rmkit::path_exists(path)) << "missing asset " << (path) << " (set RMKIT_ASSETS)"

// A fresh empty directory under this process's test root, TMPDIR/rmkit_test_<pid>/.
std::string temp_dir(const std::string& tag);
// Called by test_main after the tests: removes the process's test root when every test passed,
// keeps it (and says where on stderr) after a failure or with RMKIT_KEEP_TEST_TMP=1.
void finish_temp_dirs(bool passed);

// Path of the built rmkit binary: RMKIT_BIN from the environment, else the path CMake compiled in
// (RMKIT_BIN_DEFAULT), else ./rmkit.
inline std::string rmkit_bin() {
  if (const char* b = std::getenv("RMKIT_BIN")) return b;
#ifdef RMKIT_BIN_DEFAULT
  return RMKIT_BIN_DEFAULT;
#else
  return "./rmkit";
#endif
}

struct CmdResult {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs `rmkit <args>` through /bin/sh (args is already shell-quoted by the caller).
CmdResult run_rmkit(const std::string& args, const std::string& stdin_text = "");
std::string shell_quote(const std::string& s);

}  // namespace rmkit::testing
