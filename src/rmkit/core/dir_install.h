// Installing a completely written directory (a saved model) at its final path so that a kill -9 at
// any moment leaves, at that path, either the complete previous copy or the complete new one, and
// never a mix of the two; whatever an interruption leaves beside it is finished or rolled back by
// recover_installs() at the next start-up (under the run lock).
//
// Names beside TARGET (".NAME.<kind>-<pid>", pid of the writing process):
//   ".NAME.tmp-<pid>"  being written: incomplete, a stale one is removed (remove_run_temps)
//   ".NAME.new-<pid>"  complete, not yet installed: recovery installs it
//   ".NAME.old-<pid>"  the previous copy moved aside: recovery restores it only if TARGET is missing
//
// Two ways of installing, chosen by what TARGET holds:
//   TARGET missing, or holding only names the new copy has (a dedicated directory such as best/):
//     rename TARGET -> .NAME.old-<pid>, rename .NAME.new-<pid> -> TARGET, remove the old one. The path
//     is the complete old or the complete new directory, absent only between the two renames.
//   TARGET holding other entries too (a run directory with run.json, checkpoints/, the lock): file by
//     file, with `commit_file` (model.safetensors) as the commit point: the old commit file is removed
//     first and the new one moved in last, so while the other files change the directory has no
//     weights (a load fails) and never pairs new metadata with old weights or the reverse.
// Torch-free.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace rmkit {

// The commit file of a saved model directory (its weights).
inline constexpr const char* kModelCommitFile = "model.safetensors";

// Called at each step of an install with the step's name (tests stop the process there).
using InstallHook = std::function<void(const std::string& point)>;

// ".NAME.<kind>-<pid>" beside `target` (kind "tmp", "new" or "old").
std::string install_temp_path(const std::string& target, const std::string& kind, long pid);

// Installs the complete directory `staged` (named install_temp_path(target, "new", pid)) at
// `target`, as described above. Throws IoError naming the path when a rename fails; what is on disk
// is then still one of the states recover_installs() finishes.
void install_staged_dir(const std::string& staged, const std::string& target, const std::string& commit_file,
                        const InstallHook& hook = {});

// The whole save: `write(tmp)` fills a fresh ".NAME.tmp-<pid>" beside `target` (removed again if it
// throws), which is then renamed ".NAME.new-<pid>" (hook point "staged") and installed.
void write_and_install_dir(const std::string& target, const std::string& commit_file,
                           const std::function<void(const std::string& tmp)>& write, const InstallHook& hook = {});

// Finishes the interrupted installs of other processes in `dir`: every ".NAME.new-<pid>" is
// installed at dir/NAME (the newest complete copy wins), then every ".NAME.old-<pid>" is restored
// to dir/NAME when that is missing, else removed. With `only_name`, only installs of dir/only_name.
// A NAME that is itself an rmkit temp (".X.tmp-<pid>") is a temp's install: its leftovers are
// removed. Returns one line per action, for the log.
std::vector<std::string> recover_installs(const std::string& dir, const std::string& commit_file,
                                          const std::string& only_name = "");

}  // namespace rmkit
