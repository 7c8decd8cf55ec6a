// Load and throughput client for `rmkit serve` (cpp-httplib, keep-alive, one connection per
// client thread). Request bodies are built before the clock starts.
//   bench_serve --url 127.0.0.1:PORT --data F.jsonl [--mode throughput|load] [--clients 32]
//               [--pairs-per-request 4] [--pairs N] [--duration S] [--routes score|mixed] [--api-key-file F]
// throughput: the clients share the first N pairs (4 per /v1/score request: each pair's prompt with
//   its chosen and its rejected reply) until all are scored; prints pairs/s.
// load: every client loops for --duration seconds over mixed routes (/v1/score, /v1/compare,
//   /get_reward, /classify, /predict); prints requests/s, latency percentiles, errors and the
//   server's RSS (from /metrics) at start and end.
// Output: one JSON line on stdout.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/core/options.h"
#include "rmkit/data/readers.h"

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Request {
  std::string path, body;
  int pairs = 0;
};

json messages(const rmkit::text::Conversation& c) {
  json m = json::array();
  for (const auto& x : c) m.push_back({{"role", x.role}, {"content", x.content}});
  return m;
}

std::string flat(const rmkit::text::Conversation& c) {
  std::string s;
  for (const auto& x : c) s += x.content + "\n";
  return s;
}

std::vector<Request> build(const std::vector<rmkit::data::PrefPair>& pairs, int per, bool mixed) {
  std::vector<Request> out;
  for (size_t i = 0, k = 0; i < pairs.size(); i += static_cast<size_t>(per), ++k) {
    const size_t end = std::min(pairs.size(), i + static_cast<size_t>(per));
    const int route = mixed ? static_cast<int>(k % 5) : 0;
    Request r;
    r.pairs = static_cast<int>(end - i);
    json in = json::array();
    for (size_t j = i; j < end; ++j) {
      const auto& p = pairs[j];
      switch (route) {
        case 0:
          in.push_back({{"prompt", messages(p.prompt)}, {"response", p.chosen}});
          in.push_back({{"prompt", messages(p.prompt)}, {"response", p.rejected}});
          break;
        case 2: case 3:
          in.push_back(flat(p.prompt) + p.chosen);
          in.push_back(flat(p.prompt) + p.rejected);
          break;
        default:
          in.push_back({flat(p.prompt), p.chosen});
          in.push_back({flat(p.prompt), p.rejected});
      }
    }
    switch (route) {
      case 0: r.path = "/v1/score"; r.body = json{{"inputs", in}}.dump(); break;
      case 1:
        r.path = "/v1/compare";
        r.body = json{{"prompt", messages(pairs[i].prompt)}, {"responses", {pairs[i].chosen, pairs[i].rejected}}}.dump();
        r.pairs = 1;
        break;
      case 2: r.path = "/get_reward"; r.body = json{{"query", in}}.dump(); break;
      case 3: r.path = "/classify"; r.body = json{{"input", in}, {"use_activation", false}}.dump(); break;
      default: r.path = "/predict"; r.body = json{{"inputs", in}, {"raw_scores", true}}.dump();
    }
    out.push_back(std::move(r));
  }
  return out;
}

double server_rss(httplib::Client& c, const httplib::Headers& h) {
  auto r = c.Get("/metrics", h);
  if (!r || r->status != 200) return -1;
  auto p = r->body.find("\nprocess_resident_memory_bytes ");
  return p == std::string::npos ? -1 : std::stod(r->body.substr(p + 31));
}

double pct(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::min<double>(v.size() - 1, q * (v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<rmkit::OptionSpec> specs = {
      {"url", rmkit::OptKind::String, "", "HOST:PORT of the server", true},
      {"data", rmkit::OptKind::String, "", "preference pairs (any format rmkit reads)", true},
      {"mode", rmkit::OptKind::String, "throughput", "throughput | load"},
      {"clients", rmkit::OptKind::Int, "32", "concurrent clients"},
      {"pairs-per-request", rmkit::OptKind::Int, "4", "pairs per request"},
      {"pairs", rmkit::OptKind::Int, "512", "pairs to use"},
      {"duration", rmkit::OptKind::Float, "60", "seconds (load mode)"},
      {"routes", rmkit::OptKind::String, "score", "score | mixed"},
      {"api-key-file", rmkit::OptKind::String, "", "file whose first line is the API key"},
  };
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto o = rmkit::Options::parse(args, specs);
    if (o.help_requested()) {
      std::cout << rmkit::Options::help_text("bench_serve", "load / throughput client for rmkit serve", specs);
      return 0;
    }
    const std::string url = o.str("url");
    const auto colon = url.rfind(':');
    const std::string host = url.substr(0, colon);
    const int port = std::stoi(url.substr(colon + 1));
    const std::string mode = o.choice("mode", {"throughput", "load"});
    const int clients = static_cast<int>(o.integer("clients"));
    httplib::Headers hdr;
    if (o.has("api-key-file")) {
      std::string k = rmkit::read_file(o.str("api-key-file"));
      k = k.substr(0, k.find('\n'));
      hdr.emplace("Authorization", "Bearer " + k);
    }
    std::vector<rmkit::data::PrefPair> pairs;
    for (auto& p : rmkit::data::read_prefs(o.str("data"))) {
      if (static_cast<long long>(pairs.size()) >= o.integer("pairs")) break;
      if (!p.chosen.empty() && !p.rejected.empty() && p.chosen != p.rejected) pairs.push_back(std::move(p));
    }
    const bool mixed = o.str("routes") == "mixed";
    const auto reqs = build(pairs, static_cast<int>(o.integer("pairs-per-request")), mixed);
    httplib::Client probe(host, port);
    const double rss0 = server_rss(probe, hdr);

    std::atomic<size_t> next{0};
    std::atomic<int64_t> done_pairs{0}, done_reqs{0};
    std::mutex mu;
    std::vector<double> lat;
    std::map<int, int64_t> status;
    std::map<std::string, int64_t> all_client_errors;
    const double duration = o.number("duration");
    const auto t0 = Clock::now();
    std::vector<std::thread> th;
    for (int c = 0; c < clients; ++c)
      th.emplace_back([&, c] {
        httplib::Client cli(host, port);
        cli.set_keep_alive(true);
        cli.set_read_timeout(120, 0);
        std::vector<double> my;
        std::map<int, int64_t> st;
        std::map<std::string, int64_t> client_errors;  // status 0: what the client saw
        for (size_t k = static_cast<size_t>(c);; ++k) {
          size_t i;
          if (mode == "throughput") {
            i = next++;
            if (i >= reqs.size()) break;
          } else {
            if (std::chrono::duration<double>(Clock::now() - t0).count() >= duration) break;
            i = (k * 7919) % reqs.size();
          }
          const auto a = Clock::now();
          auto r = cli.Post(reqs[i].path.c_str(), hdr, reqs[i].body, "application/json");
          my.push_back(std::chrono::duration<double>(Clock::now() - a).count());
          const int s = r ? r->status : 0;
          ++st[s];
          if (!r) ++client_errors[httplib::to_string(r.error())];
          if (s == 200) done_pairs += reqs[i].pairs, ++done_reqs;
        }
        std::lock_guard<std::mutex> lk(mu);
        lat.insert(lat.end(), my.begin(), my.end());
        for (auto& [k, v] : st) status[k] += v;
        for (auto& [k, v] : client_errors) all_client_errors[k] += v;
      });
    for (auto& t : th) t.join();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const double rss1 = server_rss(probe, hdr);
    int64_t errors = 0;
    json st = json::object();
    for (auto& [k, v] : status) {
      st[std::to_string(k)] = v;
      if (k != 200) errors += v;
    }
    json out = {{"mode", mode},           {"clients", clients},
                {"routes", o.str("routes")}, {"seconds", secs},
                {"requests", static_cast<int64_t>(lat.size())}, {"requests_per_s", lat.size() / secs},
                {"pairs_per_s", done_pairs.load() / secs},      {"p50_ms", 1e3 * pct(lat, 0.5)},
                {"p95_ms", 1e3 * pct(lat, 0.95)}, {"p99_ms", 1e3 * pct(lat, 0.99)},
                {"errors", errors},               {"status", st},
                {"client_errors", all_client_errors},
                {"server_rss_mb_start", rss0 / 1048576.0}, {"server_rss_mb_end", rss1 / 1048576.0}};
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_serve: error: " << e.what() << "\n";
    return 1;
  }
}
