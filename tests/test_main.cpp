#include <gtest/gtest.h>

#include "rmkit/core/cpu_env.h"
#include "test_util.h"

int main(int argc, char** argv) {
  rmkit::apply_cpu_env(argc, argv);  // same OpenBLAS/ATen dispatch as the rmkit binary
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  rmkit::testing::finish_temp_dirs(rc == 0);
  return rc;
}
