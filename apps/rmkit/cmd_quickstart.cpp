// rmkit quickstart: the main job on the shipped assets, end to end in a few minutes on 2 cores:
//   1. system + model info, and a greedy story from stories260K (the foundation at work);
//   2. a short reward-model training from stories260K on a slice of RMB pairwise;
//   3. evaluation on LLMBar and the RM-Bench chat subset, eval.json and report.html;
//   4. `rmkit serve` on the trained RM (127.0.0.1, a free port): two responses scored through
//      /v1/score, then the server is stopped.
#include <httplib.h>

#include <chrono>
#include <iostream>

#include "command.h"
#include "rmkit/core/error.h"
#include "rmkit/core/file_io.h"
#include "rmkit/eval/metrics/metrics.h"
#include "rmkit/eval/metrics/report.h"
#include "rmkit/eval/metrics/score_reader.h"
#include "rmkit/eval/score_job.h"
#include "rmkit/model/checkpoint.h"
#include "rmkit/model/generate.h"
#include "rmkit/model/runtime.h"
#include "rmkit/serve/server.h"
#include "rmkit/train/trainer.h"

namespace rmkit::cli {
namespace {

// Writes every `stride`-th row of `src` (whose `field` equals `value` when given) to `dst`, up to
// `limit` rows. Returns the number written.
size_t write_slice(const std::string& src, const std::string& dst, size_t stride, size_t limit,
                   const std::string& field = "", const std::string& value = "") {
  std::string out;
  size_t seen = 0, n = 0;
  for_each_line(src, [&](const std::string& line, size_t) {
    if (line.empty()) return true;
    if (!field.empty()) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || j.value(field, "") != value) return true;
    }
    if (seen++ % stride == 0) {
      out += line + "\n";
      ++n;
    }
    return n < limit;
  });
  write_file_atomic(dst, out);
  return n;
}

int run_quickstart(const Options& o) {
  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  model::configure_runtime(static_cast<int>(o.integer("threads")));
  const std::string out = o.str("output");
  make_dirs(join_path(out, "data"));
  const std::string model_bin = asset_path("models/stories260K/stories260K.bin");
  const std::string tok_path = asset_path("models/stories260K/tok512.model");
  if (!path_exists(model_bin))
    throw IoError(model_bin + ": shared assets not found (set RMKIT_ASSETS to the assets directory)");

  auto sys = model::system_info();
  std::cout << "== system: libtorch " << sys["libtorch_version"].get<std::string>() << ", BLAS "
            << sys["blas"].get<std::string>() << ", " << sys["threads"] << " threads, AVX-512 "
            << (sys["cpu"]["avx512f"].get<bool>() ? "yes" : "no") << ", BF16 "
            << (sys["cpu"]["avx512_bf16"].get<bool>() ? "yes" : "no") << "\n";
  for (const auto& w : sys["warnings"]) std::cout << "   warning: " << w.get<std::string>() << "\n";

  // 1. the foundation: load, describe, generate
  auto lm = model::load_pretrained(model_bin, tok_path);
  const auto& c = lm.config;
  std::cout << "== model " << model_bin << ": " << c.family << ", " << c.num_hidden_layers << " layers, hidden "
            << c.hidden_size << ", heads " << c.num_attention_heads << "/" << c.num_key_value_heads << ", vocab "
            << c.vocab_size << "; tokenizer " << lm.tokenizer->kind() << " (" << lm.tokenizer->vocab_size()
            << " pieces)\n";
  model::GenerationConfig g;
  g.max_new_tokens = 60;
  g.stop_ids = lm.tokenizer->stop_ids();
  auto prompt = lm.tokenizer->encode("Once upon a time", /*add_special=*/true);
  auto gen = model::generate(*lm.model, {prompt}, g);
  std::cout << "== greedy story: Once upon a time" << lm.tokenizer->decode(gen[0]) << "\n";

  // 2. reward-model training on a slice of RMB
  const std::string train_file = join_path(out, "data/rmb_slice.jsonl");
  size_t n_train = write_slice(asset_path("prefs/rmb_pairwise.jsonl.gz"), train_file, 7,
                               static_cast<size_t>(o.integer("train-pairs")));
  const std::string llmbar = join_path(out, "data/llmbar.jsonl");
  const std::string rmbench = join_path(out, "data/rm_bench_chat.jsonl");
  write_slice(asset_path("prefs/llmbar.jsonl.gz"), llmbar, 1, 1u << 30);
  write_slice(asset_path("prefs/rm_bench_chat_code_safety.jsonl.gz"), rmbench, 1, 1u << 30, "category", "chat");
  std::cout << "== training a reward model from stories260K on " << n_train << " RMB pairs\n";
  train::TrainerOptions t;
  t.model = model_bin;
  t.tokenizer = tok_path;
  t.data = {train_file};
  t.output = join_path(out, "rm");
  t.overwrite = true;  // a re-run of the quickstart replaces its previous model
  t.chat_template = "plain";
  t.max_length = o.integer("max-length");
  t.batch_size = o.integer("batch-size");
  t.lr = o.number("lr");
  t.max_steps = o.integer("steps");
  t.warmup_ratio = 0.05;
  t.eval_every = std::max<int64_t>(1, t.max_steps / 4);
  t.val_fraction = 0.1;
  t.loss = o.str("loss");
  t.seed = 42;
  train::Trainer trainer(t);
  auto res = trainer.train();
  std::cout << "   " << res.steps << " steps in " << res.seconds << " s, final loss " << res.final_loss
            << ", validation accuracy " << res.final_val_accuracy << " (best " << res.best_val_accuracy
            << " at step " << res.best_step << ")\n";

  // 3. evaluation
  std::cout << "== evaluating on LLMBar and RM-Bench chat\n";
  eval::ScoreJob job;
  job.model = t.output;
  job.opts.max_length = t.max_length;
  job.opts.batch_size = 32;
  eval::RowScorer scorer(job);
  std::vector<eval::ScoredPair> pairs;
  const std::string eval_dir = join_path(out, "eval");
  make_dirs(eval_dir);
  for (const auto& [path, name] : {std::pair{llmbar, std::string("llmbar")}, std::pair{rmbench, std::string("rm_bench_chat")}}) {
    auto f = scorer.score_file(path);
    std::string rows;
    for (size_t i = 0; i < f.rows.size(); ++i) {
      pairs.push_back(eval::scored_pair_from_json(f.rows[i], name, path + ":" + std::to_string(i + 1)));
      rows += f.rows[i].dump() + "\n";
    }
    write_file_atomic(join_path(eval_dir, "scores_" + name + ".jsonl"), rows);
  }
  auto ev = eval::compute_eval(pairs);
  write_file_atomic(join_path(eval_dir, "eval.json"), ev.dump(2) + "\n");
  eval::ReportOptions ro;
  ro.title = "rmkit quickstart: stories260K reward model";
  ro.subtitle = "trained on " + std::to_string(n_train) + " RMB pairs; evaluated on LLMBar and RM-Bench chat";
  ro.metrics_jsonl = join_path(t.output, "metrics.jsonl");
  const std::string report = join_path(eval_dir, "report.html");
  eval::write_report(report, ev, pairs, ro);
  for (auto it = ev["accuracy"]["by_file"].begin(); it != ev["accuracy"]["by_file"].end(); ++it)
    std::cout << "   " << it.key() << ": accuracy " << it.value()["acc"].get<double>() << " (n=" << it.value()["n"]
              << ")\n";
  for (auto it = ev["length_bias"]["longer_wins"]["by_file"].begin(); it != ev["length_bias"]["longer_wins"]["by_file"].end(); ++it)
    std::cout << "   " << it.key() << ": longer-response-wins baseline " << it.value()["acc"].get<double>() << "\n";
  // 4. serving
  std::cout << "== serving the reward model (rmkit serve, 127.0.0.1)\n";
  serve::ServerConfig sc;
  sc.models = {{"quickstart-rm", t.output}};
  sc.port = 0;
  sc.http_threads = 8;
  sc.slot.max_length = t.max_length;
  serve::Server server(sc);
  const int port = server.bind();
  server.start();
  if (!server.wait_ready(120)) throw Error("quickstart: the server did not start: " + server.load_error());
  const nlohmann::json request = {
      {"inputs",
       {{{"prompt", "Tell me a story about a cat."}, {"response", "Once upon a time there was a cat named Tom. He liked to play in the sun."}},
        {{"prompt", "Tell me a story about a cat."}, {"response", "cat cat cat the the the"}}}}};
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  auto res_http = client.Post("/v1/score", request.dump(), "application/json");
  if (!res_http || res_http->status != 200)
    throw Error("quickstart: /v1/score failed: " + (res_http ? res_http->body : std::string("no response")));
  auto reply = nlohmann::json::parse(res_http->body);
  std::cout << "   POST http://127.0.0.1:" << port << "/v1/score " << request.dump() << "\n   -> " << reply.dump() << "\n";
  server.shutdown();
  std::cout << "   server stopped\n";
  std::cout << "== done in " << static_cast<int>(elapsed()) << " s\n   model:  " << t.output
            << "\n   report: " << report << "\n";
  return 0;
}

CommandRegistrar reg({"quickstart",
                      "the main job on the shipped assets: generate, train a small RM, evaluate, report",
                      {
                          {"output", OptKind::String, "quickstart-out", "output directory"},
                          {"steps", OptKind::Int, "200", "training steps", false, false, "[1,1000000]"},
                          {"train-pairs", OptKind::Int, "2000", "RMB pairs in the training slice", false, false, "[2,1000000]"},
                          {"batch-size", OptKind::Int, "16", "pairs per step", false, false, "[1,4096]"},
                          {"max-length", OptKind::Int, "192", "tokens per sequence", false, false, "[8,1000000]"},
                          {"lr", OptKind::Float, "1e-3", "peak learning rate", false, false, "(0,1]"},
                          {"loss", OptKind::String, "bt", "loss spec, e.g. bt or bt:1,dpo:0.2"},
                          {"threads", OptKind::Int, "0", "intra-op threads (0 = physical cores)"},
                      },
                      {},
                      run_quickstart,
                      true});

}  // namespace
}  // namespace rmkit::cli
