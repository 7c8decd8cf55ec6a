#include "rmkit/distill/call_cache.h"

#include <sqlite3.h>

#include <chrono>

namespace rmkit::distill {
namespace {

// Finalizes a prepared statement on scope exit.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

}  // namespace

CallCache::CallCache(const std::string& path) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw IoError(path + ": cannot open the call cache: " + msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  // WAL + synchronous=NORMAL: a committed row survives the process being killed at any moment
  // (a power loss may lose the last transactions, never corrupt the file).
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  exec("CREATE TABLE IF NOT EXISTS calls ("
       " key TEXT PRIMARY KEY, stage TEXT NOT NULL, request TEXT NOT NULL, reply TEXT NOT NULL,"
       " finish_reason TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
       " created REAL NOT NULL)");
}

CallCache::~CallCache() {
  if (db_) sqlite3_close(db_);
}

void CallCache::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw IoError(path_ + ": " + msg + " (" + sql + ")");
  }
}

std::optional<ChatReply> CallCache::get(const std::string& key) {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT reply, finish_reason, prompt_tokens, completion_tokens FROM calls WHERE key = ?",
                         -1, &st.s, nullptr) != SQLITE_OK)
    throw IoError(path_ + ": " + sqlite3_errmsg(db_));
  sqlite3_bind_text(st.s, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
  const int rc = sqlite3_step(st.s);
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) throw IoError(path_ + ": reading the call cache: " + sqlite3_errmsg(db_));
  ChatReply r;
  auto text = [&](int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st.s, col));
    return std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st.s, col)));
  };
  r.text = text(0);
  r.finish_reason = text(1);
  r.prompt_tokens = sqlite3_column_int64(st.s, 2);
  r.completion_tokens = sqlite3_column_int64(st.s, 3);
  r.cached = true;
  return r;
}

void CallCache::put(const std::string& key, const std::string& stage, const ChatRequest& req, const ChatReply& reply) {
  const std::string request = canonical_request(req).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::lock_guard<std::mutex> lk(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_,
                         "INSERT OR IGNORE INTO calls (key, stage, request, reply, finish_reason, prompt_tokens,"
                         " completion_tokens, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         -1, &st.s, nullptr) != SQLITE_OK)
    throw IoError(path_ + ": " + sqlite3_errmsg(db_));
  auto bind = [&](int i, const std::string& s) {
    sqlite3_bind_text(st.s, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  };
  bind(1, key);
  bind(2, stage);
  bind(3, request);
  bind(4, reply.text);
  bind(5, reply.finish_reason);
  sqlite3_bind_int64(st.s, 6, reply.prompt_tokens);
  sqlite3_bind_int64(st.s, 7, reply.completion_tokens);
  sqlite3_bind_double(st.s, 8, now);
  if (sqlite3_step(st.s) != SQLITE_DONE) throw IoError(path_ + ": writing the call cache: " + sqlite3_errmsg(db_));
}

int64_t CallCache::size() {
  std::lock_guard<std::mutex> lk(mu_);
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT COUNT(*) FROM calls", -1, &st.s, nullptr) != SQLITE_OK ||
      sqlite3_step(st.s) != SQLITE_ROW)
    throw IoError(path_ + ": " + sqlite3_errmsg(db_));
  return sqlite3_column_int64(st.s, 0);
}

}  // namespace rmkit::distill
