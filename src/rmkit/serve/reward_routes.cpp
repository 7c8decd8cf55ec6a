// rmkit's own reward routes: POST /v1/score and POST /v1/compare.
#include <httplib.h>

#include <algorithm>
#include <numeric>

#include "rmkit/serve/request.h"
#include "rmkit/serve/routes.h"

namespace rmkit::serve {
namespace {

// Raw scalars by default; normalize: (r - mean) / std with rmkit.json's calibration; raw: false
// applies a sigmoid (after normalising, when both are asked).
struct Transform {
  bool normalize = false, sigmoid = false;
  double mean = 0, std = 1;
  double operator()(double r) const {
    if (normalize) r = (r - mean) / std;
    return sigmoid ? serve::sigmoid(r) : r;
  }
};

Transform transform_for(const json& body, const RewardSlot& rm) {
  Transform t;
  t.sigmoid = !opt_bool(body, "raw").value_or(true);
  t.normalize = opt_bool(body, "normalize").value_or(false);
  if (t.normalize) {
    if (!rm.has_calibration() || !(rm.reward_std() > 0))
      throw HttpError::unprocessable("normalize: model '" + rm.name() +
                                         "' has no reward calibration in rmkit.json (train it with validation data)",
                                     "normalize");
    t.mean = rm.reward_mean();
    t.std = rm.reward_std();
  }
  return t;
}

EncodedInput encode_score_input(const RewardSlot& rm, const json& in, const std::string& f) {
  if (!in.is_object()) throw HttpError::bad_request(f + ": expected an object, got " + type_name(in), f);
  if (in.contains("messages")) {
    check_keys(in, {"messages"}, f);
    text::Conversation conv = parse_messages(in["messages"], f + ".messages");
    if (conv.empty() || conv.back().role != "assistant")
      throw HttpError::unprocessable(f + ".messages: the last message must be the assistant reply to score",
                                     f + ".messages");
    std::string reply = conv.back().content;
    conv.pop_back();
    return rm.encode_chat(conv, reply, f);
  }
  if (in.contains("response")) {
    check_keys(in, {"prompt", "response"}, f);
    if (!in.contains("prompt")) throw HttpError::bad_request(f + ".prompt: required with 'response'", f + ".prompt");
    return rm.encode_chat(parse_prompt(in["prompt"], f + ".prompt"), req_string(in, "response", f), f);
  }
  if (in.contains("text")) {
    check_keys(in, {"text"}, f);
    return rm.encode_text(req_string(in, "text", f), f);
  }
  throw HttpError::bad_request(f + ": expected {\"messages\": [...]}, {\"prompt\", \"response\"} or {\"text\"}", f);
}

}  // namespace

void Routes::add_reward(Server& s) {
  route(s, "POST", "/v1/score", [&s](const httplib::Request& req, httplib::Response&) {
    json body = parse_body(req.body);
    check_keys(body, {"model", "inputs", "raw", "normalize", "user"});
    auto& slot = slot_for(s, body);
    const RewardSlot& rm = *slot.rm;
    Transform tf = transform_for(body, rm);
    if (!body.contains("inputs") || !body["inputs"].is_array())
      throw HttpError::bad_request("inputs: expected an array of inputs", "inputs");
    const json& inputs = body["inputs"];
    check_input_count(inputs.size(), config(s).max_inputs, "inputs");
    std::vector<EncodedInput> encoded;
    for (size_t i = 0; i < inputs.size(); ++i)
      encoded.push_back(encode_score_input(rm, inputs[i], "inputs[" + std::to_string(i) + "]"));
    GroupedInputs g = group_by_prompt(std::move(encoded));  // a shared prompt runs once
    auto rewards = score(s, slot, std::move(g.groups), inputs.size());
    json data = json::array();
    int64_t total = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const double r = rewards[g.reward_index[i]];
      data.push_back({{"index", i}, {"reward", tf(r)}, {"tokens", g.tokens[i]}, {"truncated", bool(g.truncated[i])}});
      total += g.tokens[i];
    }
    return json{{"object", "list"},
                {"model", rm.name()},
                {"data", data},
                {"usage", {{"prompt_tokens", total}, {"total_tokens", total}}}};
  });

  route(s, "POST", "/v1/compare", [&s](const httplib::Request& req, httplib::Response&) {
    json body = parse_body(req.body);
    check_keys(body, {"model", "prompt", "responses", "raw", "normalize", "user"});
    auto& slot = slot_for(s, body);
    const RewardSlot& rm = *slot.rm;
    Transform tf = transform_for(body, rm);
    if (!body.contains("prompt")) throw HttpError::bad_request("prompt: required", "prompt");
    text::Conversation prompt = parse_prompt(body["prompt"], "prompt");
    if (!body.contains("responses") || !body["responses"].is_array())
      throw HttpError::bad_request("responses: expected an array of strings", "responses");
    std::vector<std::string> replies;
    for (size_t i = 0; i < body["responses"].size(); ++i) {
      const json& r = body["responses"][i];
      if (!r.is_string())
        throw HttpError::bad_request("responses[" + std::to_string(i) + "]: expected a string, got " + type_name(r),
                                     "responses");
      replies.push_back(r.get<std::string>());
    }
    check_input_count(replies.size(), config(s).max_inputs, "responses");
    std::vector<EncodedInput> encoded;  // each reply exactly as a single input; the prompt runs once
    for (size_t i = 0; i < replies.size(); ++i)
      encoded.push_back(rm.encode_chat(prompt, replies[i], "responses[" + std::to_string(i) + "]"));
    GroupedInputs c = group_by_prompt(std::move(encoded));
    auto grouped = score(s, slot, std::move(c.groups), replies.size());
    const size_t n = replies.size();
    std::vector<double> raw(n), out(n);
    for (size_t i = 0; i < n; ++i) {
      raw[i] = grouped[c.reward_index[i]];
      out[i] = tf(raw[i]);
    }
    std::vector<size_t> rank(n);
    std::iota(rank.begin(), rank.end(), 0);
    std::stable_sort(rank.begin(), rank.end(), [&](size_t a, size_t b) { return raw[a] > raw[b]; });
    json probs = json::array();
    for (size_t i = 0; i < n; ++i) {
      json row = json::array();
      for (size_t j = 0; j < n; ++j) row.push_back(sigmoid(raw[i] - raw[j]));
      probs.push_back(row);
    }
    int64_t total = 0;
    for (auto t : c.tokens) total += t;
    json trunc = json::array();
    for (bool b : c.truncated) trunc.push_back(b);
    return json{{"model", rm.name()},
                {"rewards", out},
                {"ranking", rank},
                {"probabilities", probs},
                {"tokens", c.tokens},
                {"truncated", trunc},
                {"usage", {{"prompt_tokens", total}, {"total_tokens", total}}}};
  });
}

}  // namespace rmkit::serve
