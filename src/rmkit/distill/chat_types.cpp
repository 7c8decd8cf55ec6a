#include "rmkit/distill/chat_types.h"

#include <openssl/evp.h>

#include <cstdio>
#include <fstream>
#include <vector>

namespace rmkit::distill {

nlohmann::json canonical_request(const ChatRequest& r) {
  nlohmann::json msgs = nlohmann::json::array();
  for (const auto& m : r.messages) msgs.push_back({{"content", m.content}, {"role", m.role}});
  nlohmann::json j = {{"model", r.model},
                      {"messages", msgs},
                      {"temperature", r.sampling.temperature},
                      {"top_p", r.sampling.top_p},
                      {"top_k", r.sampling.top_k},
                      {"max_tokens", r.sampling.max_tokens}};
  if (r.seed) j["seed"] = *r.seed;
  if (r.sampling.temperature > 0) j["sample_index"] = r.sample_index;
  return j;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
    throw Error("sha256: OpenSSL init failed");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::add(const void* data, size_t n) {
  if (n && EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n) != 1) throw Error("sha256: OpenSSL update failed");
}

void Sha256::add_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot read");
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    add(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw IoError(path + ": read error");
}

std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &n) != 1) throw Error("sha256: OpenSSL final failed");
  std::string hex(2 * n, '0');
  for (unsigned i = 0; i < n; ++i) std::snprintf(&hex[2 * i], 3, "%02x", md[i]);
  return hex;
}

std::string sha256_hex(const std::string& data) {
  Sha256 h;
  h.add(data.data(), data.size());
  return h.hex();
}

std::string request_key(const ChatRequest& r) {
  return sha256_hex(canonical_request(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

const char* CallError::kind_name(Kind k) {
  switch (k) {
    case Kind::Connection: return "connection";
    case Kind::Timeout: return "timeout";
    case Kind::RateLimited: return "rate_limited";
    case Kind::Server: return "server_error";
    case Kind::Client: return "client_error";
    case Kind::Malformed: return "malformed_reply";
  }
  return "unknown";
}

}  // namespace rmkit::distill
