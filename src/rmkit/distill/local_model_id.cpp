#include "rmkit/distill/local_model_id.h"

#include <openssl/evp.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "rmkit/core/error.h"

namespace rmkit::distill {

namespace fs = std::filesystem;

namespace {

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) throw Error("sha256: OpenSSL init failed");
  }
  void add(const void* data, size_t n) {
    if (n && EVP_DigestUpdate(ctx_.get(), data, n) != 1) throw Error("sha256: OpenSSL update failed");
  }
  void add(const std::string& s) { add(s.data(), s.size() + 1); }  // with its terminator: fields stay apart
  void add_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw IoError(p.string() + ": cannot read (for the model's cache identity)");
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      add(buf.data(), static_cast<size_t>(in.gcount()));
    }
    if (in.bad()) throw IoError(p.string() + ": read error (for the model's cache identity)");
  }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), md, &n) != 1) throw Error("sha256: OpenSSL final failed");
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) out += {digits[md[i] >> 4], digits[md[i] & 15]};
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

}  // namespace

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
      h.add(fs::relative(f, path).generic_string());
      h.add(std::to_string(fs::file_size(f)));
      h.add_file(f);
    }
  } else {
    h.add_file(path);
  }
  h.add(tokenizer.empty() ? std::string("-") : std::string("tokenizer"));
  if (!tokenizer.empty()) h.add_file(tokenizer);
  h.add(chat_template);
  const std::string shown = name.empty() ? fs::path(path).filename().string() : name;
  return shown + "@" + h.hex().substr(0, 16);
}

}  // namespace rmkit::distill
