// Data-parallel options shared by `rmkit train`, `rmkit score` and `rmkit eval`: when the process
// was launched with WORLD_SIZE > 1 (torchrun, `rmkit launch`, scripts/rmkit-srun.sh) it joins the
// c10d process group before doing anything else.
#pragma once
#include <vector>

#include "rmkit/core/options.h"

namespace rmkit::cli {

// `specs` plus --threads (when absent), --dist-timeout and --dist-backend.
std::vector<OptionSpec> with_dist_options(std::vector<OptionSpec> specs);
// Sets the intra-op threads (--threads; 0 = physical cores / ranks on this machine) and, when
// distributed, creates dist::default_group(). Returns true on rank 0 (or a single process): the
// rank that prints and writes outputs.
bool init_dist_from_options(const Options& o);

}  // namespace rmkit::cli
