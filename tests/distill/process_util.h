// Starting the rmkit binary as a child process for the distillation tests (kill -9 resume, a real
// `rmkit serve`), with a bounded wait that kills a child that overstays.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace rmkit::distill::testing {

// Starts `rmkit args...` with stdout and stderr appended to `log`.
pid_t spawn_rmkit(const std::vector<std::string>& args, const std::string& log);
// Waits up to `timeout_s`; on timeout the child is killed (SIGKILL) and -1 returned. Otherwise the
// raw wait status.
int wait_child(pid_t pid, double timeout_s);
// Waits until `port_file` holds a port and GET /health answers 200 there; 0 on timeout.
int wait_for_server(const std::string& port_file, double timeout_s);

}  // namespace rmkit::distill::testing
