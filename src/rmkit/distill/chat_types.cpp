#include "rmkit/distill/chat_types.h"

#include <openssl/evp.h>

#include <cstdio>

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

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr) != 1)
    throw Error("sha256: OpenSSL EVP_Digest failed");
  std::string hex(2 * n, '0');
  for (unsigned i = 0; i < n; ++i) std::snprintf(&hex[2 * i], 3, "%02x", md[i]);
  return hex;
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
