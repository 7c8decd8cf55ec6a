#include "rmkit/distill/local_model_id.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "rmkit/core/error.h"
#include "rmkit/distill/chat_types.h"

namespace rmkit::distill {

namespace fs = std::filesystem;

std::string local_model_id(const std::string& path_in, const std::string& name, const std::string& tokenizer,
                           const std::string& chat_template) {
  std::string path = path_in;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  Sha256 h;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    // the directory's own files (what a model load reads), not subdirectories such as a training
    // run's checkpoints/ (gigabytes, and not the model), nor hidden lock and temp files
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
    if (ec) throw IoError(path + ": cannot list (for the model's cache identity): " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      h.add_field(f.filename().string());
      h.add_field(std::to_string(fs::file_size(f)));
      h.add_file(f.string());
    }
  } else {
    h.add_file(path);
  }
  h.add_field(tokenizer.empty() ? "-" : "tokenizer");
  if (!tokenizer.empty()) h.add_file(tokenizer);
  h.add_field(chat_template);
  const std::string shown = name.empty() ? fs::path(path).filename().string() : name;
  return shown + "@" + h.hex().substr(0, 16);
}

}  // namespace rmkit::distill
