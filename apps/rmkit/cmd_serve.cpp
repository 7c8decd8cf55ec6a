// rmkit serve --model DIR [--model NAME=DIR ...]: the reward-model HTTP server (src/rmkit/serve/).
// Binds loopback by default; SIGTERM/SIGINT drain requests in flight and exit 0.
#include <pthread.h>
#include <signal.h>

#include <cmath>
#include <iostream>
#include <thread>

#include "command.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/model/runtime.h"
#include "rmkit/serve/server.h"

namespace rmkit::cli {
namespace {

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::pair<std::string, std::string> model_spec(const std::string& s) {
  auto eq = s.find('=');
  if (eq != std::string::npos && eq > 0 && s.find('/') > eq) return {s.substr(0, eq), s.substr(eq + 1)};
  std::string p = s;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.rfind('/');
  return {slash == std::string::npos ? p : p.substr(slash + 1), s};
}

// Ranges are checked by the option table (OptionSpec::valid) at parse time.
long long positive(const Options& o, const char* name) { return o.integer(name); }

serve::ServerConfig config_from(const Options& o) {
  serve::ServerConfig c;
  for (const auto& m : o.list("model")) {
    auto spec = model_spec(m);
    for (const auto& prev : c.models)
      if (prev.first == spec.first)
        throw UsageError("--model: name '" + spec.first + "' given twice (use NAME=DIR to name models)");
    c.models.push_back(spec);
  }
  if (o.has("tokenizer")) c.slot.tokenizer = o.str("tokenizer");
  c.slot.chat_template = o.str("chat-template");
  c.slot.max_length = o.integer("max-length");
  c.slot.truncate = !o.flag("no-truncate");
  c.host = o.str("host");
  const long long port = o.integer("port");
  c.port = static_cast<int>(port);
  for (const auto& k : o.list("api-key")) {
    // an empty key (e.g. --api-key "$KEY" with KEY unset) would silently leave the server open
    if (k.find_first_not_of(" \t\r\n") == std::string::npos)
      throw UsageError("--api-key: empty key (is the variable you passed set?); omit --api-key to serve without one");
    c.api_keys.push_back(k);
  }
  if (o.has("api-key-file")) {
    const std::string f = o.str("api-key-file");
    size_t n = 0;
    for_each_line(f, [&](const std::string& line, size_t) {
      const size_t b = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
      const std::string k = b == std::string::npos ? "" : line.substr(b, e - b + 1);
      if (!k.empty() && k[0] != '#') c.api_keys.push_back(k), ++n;
      return true;
    });
    if (n == 0) throw UsageError("--api-key-file " + f + ": no key in the file");
  }
  c.metrics_public = o.flag("metrics-public");
  c.max_body_bytes = positive(o, "max-body-bytes");
  c.max_inputs = positive(o, "max-inputs");
  c.batcher.max_batch_tokens = positive(o, "max-batch-tokens");
  c.batcher.max_wait_ms = o.integer("max-wait-ms");
  c.batcher.max_queue = positive(o, "max-queue");
  c.batcher.bf16 = o.flag("bf16");
  c.batcher.per_request = o.flag("no-cross-request-batching");
  c.engine.kv_cache_mb = positive(o, "kv-cache-mb");
  c.engine.prefill_chunk = positive(o, "prefill-chunk");
  c.engine.max_running = positive(o, "max-running");
  c.engine.max_queue = c.batcher.max_queue;
  c.engine.bf16 = c.batcher.bf16;
  c.engine.decode_gemm = !o.flag("no-decode-gemm");
  c.request_timeout_s = o.number("request-timeout");
  c.drain_timeout_s = o.number("drain-timeout");
  c.http_threads = static_cast<int>(positive(o, "http-threads"));
  return c;
}

int run_serve(const Options& o) {
  serve::ServerConfig cfg = config_from(o);
  model::configure_runtime(static_cast<int>(o.integer("threads")));
  // The effective config, without the keys.
  nlohmann::json eff = o.effective();
  if (eff.contains("api-key")) eff["api-key"] = std::to_string(cfg.api_keys.size()) + " key(s), hidden";
  std::cerr << "rmkit serve config: " << eff.dump() << "\n";
  if (!is_loopback(cfg.host) && cfg.api_keys.empty())
    std::cerr << "rmkit serve: WARNING: binding " << cfg.host
              << " without an API key: anyone who can reach this address can use the server (pass --api-key-file)\n";

  // Signals go to sigwait below, not to whichever thread happens to run.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  serve::Server server(cfg);
  const int port = server.bind();
  if (o.has("port-file")) write_file_atomic(o.str("port-file"), std::to_string(port) + "\n");
  std::cerr << "rmkit serve: listening on http://" << cfg.host << ":" << port << " (loading "
            << cfg.models.size() << " model(s))\n";
  server.start();
  std::thread watcher([&] {
    if (server.wait_ready(1e9)) {
      for (const auto& d : server.model_descriptions()) std::cerr << "rmkit serve: " << d << "\n";
      std::cerr << "rmkit serve: ready\n";
    } else if (!server.load_error().empty()) {
      std::cerr << "rmkit serve: error: " << server.load_error() << "\n";
      kill(getpid(), SIGTERM);
    }
  });
  int sig = 0;
  sigwait(&set, &sig);
  const bool failed = !server.load_error().empty();
  std::cerr << "rmkit serve: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", draining (at most "
            << cfg.drain_timeout_s << " s)\n";
  const bool drained = server.shutdown();
  if (watcher.joinable()) watcher.join();
  std::cerr << "rmkit serve: " << (drained ? "stopped" : "drain timed out, exiting") << "\n";
  if (failed) return 1;
  if (!drained) std::_Exit(0);
  return 0;
}

CommandRegistrar reg({
    "serve",
    "serve reward models (rmkit, OpenRLHF, vLLM, TEI routes) and causal LMs (OpenAI API) over HTTP",
    {
        {"model", OptKind::String, "", "model DIR (or llama2.c .bin) or NAME=DIR, repeatable: reward models serve "
                                       "/v1/score & co., causal LMs the OpenAI routes; the first of each kind is the default", true, true},
        {"tokenizer", OptKind::String, "", "tokenizer path (required for llama2.c .bin models)"},
        {"chat-template", OptKind::String, "auto", "chat template: auto (saved in rmkit.json / detected) or a name"},
        {"host", OptKind::String, "127.0.0.1", "address to bind (loopback by default)"},
        {"port", OptKind::Int, "8000", "port (0 = any free port; see --port-file)", false, false, "[0,65535]"},
        {"port-file", OptKind::String, "", "write the bound port to this file once listening"},
        {"api-key", OptKind::String, "", "required Bearer key (repeatable; prefer --api-key-file: argv is visible)", false, true},
        {"api-key-file", OptKind::String, "", "file with one API key per line"},
        {"metrics-public", OptKind::Flag, "false", "serve /metrics without the API key"},
        {"max-body-bytes", OptKind::Int, "8388608", "largest request body (413 beyond)", false, false, "[1024,1073741824]"},
        {"max-inputs", OptKind::Int, "1024", "most inputs per request (413 beyond)", false, false, "[1,1000000]"},
        {"max-length", OptKind::Int, "0", "tokens per sequence (0 = the model's context); longer input is truncated", false, false, "[0,)"},
        {"no-truncate", OptKind::Flag, "false", "reject over-long input with 422 instead of truncating"},
        {"max-batch-tokens", OptKind::Int, "16384", "token budget of one packed batch across requests", false, false, "[1,)"},
        {"max-wait-ms", OptKind::Int, "5", "how long a batch waits to fill after its first arrival", false, false, "[0,10000]"},
        {"max-queue", OptKind::Int, "1024", "most queued reward sequences / generation requests (503 with Retry-After beyond)", false, false, "[1,10000000]"},
        {"kv-cache-mb", OptKind::Int, "1024", "KV-cache memory per causal LM; requests that do not fit wait", false, false, "[1,)"},
        {"prefill-chunk", OptKind::Int, "512", "prompt tokens per engine step (chunked prefill beside running decodes)", false, false, "[1,)"},
        {"max-running", OptKind::Int, "64", "sequences decoding at once per causal LM", false, false, "[1,4096]"},
        {"request-timeout", OptKind::Float, "60", "seconds before a request gets 504", false, false, "(0,86400]"},
        {"drain-timeout", OptKind::Float, "30", "seconds SIGTERM waits for requests in flight", false, false, "[0,86400]"},
        {"http-threads", OptKind::Int, "64", "HTTP worker threads (connections served at once)", false, false, "[8,4096]"},
        {"threads", OptKind::Int, "0", "intra-op threads of the compute thread (0 = physical cores)"},
        {"bf16", OptKind::Flag, "false", "bf16 autocast for the forward"},
        {"no-decode-gemm", OptKind::Flag, "false",
         "decode steps on torch's BLAS instead of oneDNN over [in, out] weight copies (saves the copies' memory)"},
        {"no-cross-request-batching", OptKind::Flag, "false",
         "batch each request alone (for comparisons: a one-request-at-a-time server)"},
    },
    {},
    run_serve,
    false,
});

}  // namespace
}  // namespace rmkit::cli
