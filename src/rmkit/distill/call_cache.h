// Every teacher/policy call of a distillation run, cached in SQLite (WAL mode): the key is
// request_key() of the canonical request, the value the reply. A call whose reply is here is never
// sent again, which is what makes a run resumable after Ctrl-C, kill -9 or a lost network: each
// reply is committed the moment it arrives. One connection, guarded by a mutex (calls are slow;
// the cache is not the bottleneck). Torch-free.
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "rmkit/distill/chat_types.h"

struct sqlite3;

namespace rmkit::distill {

class CallCache {
 public:
  // Opens (creating) the database at `path`. Throws IoError naming the path.
  explicit CallCache(const std::string& path);
  ~CallCache();
  CallCache(const CallCache&) = delete;
  CallCache& operator=(const CallCache&) = delete;

  std::optional<ChatReply> get(const std::string& key);
  // Inserts (or keeps the existing row for) `key`; committed before it returns.
  void put(const std::string& key, const std::string& stage, const ChatRequest& req, const ChatReply& reply);
  int64_t size();
  const std::string& path() const { return path_; }

 private:
  void exec(const char* sql);
  std::string path_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
};

}  // namespace rmkit::distill
