// The name an in-process model goes by in cache keys and the manifest: its file or directory name
// plus a digest of what it answers with, so that another checkpoint under the same name (or the
// same weights with another tokenizer or chat template) never reuses the first one's replies.
#pragma once
#include <string>

namespace rmkit::distill {

// "NAME@<16 hex>": NAME is `name` when given, else the path's last component (trailing slashes
// ignored). The digest is SHA-256 over the model's files (a directory: its own regular files, not
// hidden ones nor subdirectories such as checkpoints/, by sorted name, size and content; a file: its
// content), the tokenizer file's content when given, and the chat template name. Throws IoError
// when a file cannot be read.
std::string local_model_id(const std::string& path, const std::string& name, const std::string& tokenizer,
                           const std::string& chat_template);

}  // namespace rmkit::distill
