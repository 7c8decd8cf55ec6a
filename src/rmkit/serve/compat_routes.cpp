// Wire-compatible routes, so existing clients work unchanged:
//   OpenRLHF  POST /get_reward  {"query": [templated text...], "prompts"?, "labels"?}
//             -> {"rewards": [...], "scores": [...], "extra_logs": {}}
//   vLLM      POST /classify, POST /pooling  {"input": str | [str] | [ids] | [[ids]]} or {"messages"}
//             use_activation / activation (default true: sigmoid for one label, as vLLM)
//   TEI       POST /predict  {"inputs": str | [a, b] | [str | [a, b], ...], "raw_scores"?}
// Unknown fields are tolerated here (these clients send extras such as "user" or "priority");
// the fields that are used are type-checked.
#include <httplib.h>


#include "rmkit/serve/request.h"
#include "rmkit/serve/routes.h"

namespace rmkit::serve {
namespace {

struct Encoded {
  std::vector<eval::ScoreGroup> groups;
  int64_t tokens = 0;
};

void add(Encoded& e, EncodedInput in) {
  e.tokens += in.tokens;
  e.groups.push_back(std::move(in.group));
}

// vLLM's pooling inputs: "input" (str, [str], [ids], [[ids]]) or "messages" (one conversation;
// a final assistant message is the reply to score, otherwise the whole conversation is the prompt).
Encoded encode_vllm(const RewardSlot& rm, const json& body, int64_t max_inputs) {
  Encoded e;
  const bool has_input = body.contains("input"), has_msgs = body.contains("messages");
  if (has_input == has_msgs) throw HttpError::bad_request("give exactly one of 'input' and 'messages'", "input");
  if (has_msgs) {
    text::Conversation conv = parse_messages(body["messages"], "messages");
    if (conv.empty()) throw HttpError::unprocessable("messages: empty conversation", "messages");
    std::string reply;
    if (conv.back().role == "assistant") {
      reply = conv.back().content;
      conv.pop_back();
    }
    add(e, rm.encode_chat(conv, reply, "messages"));
    return e;
  }
  const json& in = body["input"];
  if (in.is_string()) {
    add(e, rm.encode_text(in.get<std::string>(), "input"));
  } else if (is_token_ids(in)) {
    add(e, rm.encode_ids(parse_ids(in, "input"), "input"));
  } else if (in.is_array()) {
    check_input_count(in.size(), max_inputs, "input");
    for (size_t i = 0; i < in.size(); ++i) {
      const std::string f = "input[" + std::to_string(i) + "]";
      if (in[i].is_string()) add(e, rm.encode_text(in[i].get<std::string>(), f));
      else add(e, rm.encode_ids(parse_ids(in[i], f), f));
    }
  } else {
    throw HttpError::bad_request("input: expected a string, a list of strings or token ids, got " + type_name(in),
                                 "input");
  }
  return e;
}

bool vllm_activation(const json& body) {
  if (auto v = opt_bool(body, "use_activation")) return *v;
  if (auto v = opt_bool(body, "activation")) return *v;
  return true;
}

json vllm_usage(int64_t tokens) {
  return {{"prompt_tokens", tokens}, {"total_tokens", tokens}, {"completion_tokens", 0}, {"prompt_tokens_details", nullptr}};
}

}  // namespace

void Routes::add_compat(Server& s) {
  route(s, "POST", "/get_reward", [&s](const httplib::Request& req, httplib::Response&) {
    json body = parse_body(req.body);
    auto& slot = slot_for(s, body);
    if (!body.contains("query")) throw HttpError::bad_request("query: required (a list of templated texts)", "query");
    const json& q = body["query"];
    std::vector<std::string> texts;
    if (q.is_string()) {
      texts.push_back(q.get<std::string>());
    } else if (q.is_array()) {
      for (size_t i = 0; i < q.size(); ++i) {
        if (!q[i].is_string())
          throw HttpError::bad_request("query[" + std::to_string(i) + "]: expected a string, got " + type_name(q[i]),
                                       "query");
        texts.push_back(q[i].get<std::string>());
      }
    } else {
      throw HttpError::bad_request("query: expected a list of strings, got " + type_name(q), "query");
    }
    check_input_count(texts.size(), config(s).max_inputs, "query");
    std::vector<eval::ScoreGroup> groups;
    for (size_t i = 0; i < texts.size(); ++i)
      groups.push_back(slot.rm->encode_text(texts[i], "query[" + std::to_string(i) + "]").group);
    auto rewards = score(s, slot, std::move(groups), texts.size());
    return json{{"rewards", rewards}, {"scores", rewards}, {"extra_logs", json::object()}};
  });

  for (const char* path : {"/classify", "/pooling"}) {
    const bool classify = std::string(path) == "/classify";
    route(s, "POST", path, [&s, classify](const httplib::Request& req, httplib::Response&) {
      json body = parse_body(req.body);
      auto& slot = slot_for(s, body);
      const bool act = vllm_activation(body);
      Encoded e = encode_vllm(*slot.rm, body, config(s).max_inputs);
      const size_t n = e.groups.size();
      auto rewards = score(s, slot, std::move(e.groups), n);
      json data = json::array();
      for (size_t i = 0; i < n; ++i) {
        const double v = act ? sigmoid(rewards[i]) : rewards[i];
        if (classify)
          data.push_back({{"index", i}, {"label", "LABEL_0"}, {"probs", {v}}, {"num_classes", 1}});
        else
          data.push_back({{"index", i}, {"object", "pooling"}, {"data", {v}}});
      }
      return json{{"id", request_id(classify ? "classify" : "pool")},
                  {"object", "list"},
                  {"created", created(s)},
                  {"model", slot.rm->name()},
                  {"data", data},
                  {"usage", vllm_usage(e.tokens)}};
    });
  }

  route(s, "POST", "/predict", [&s](const httplib::Request& req, httplib::Response&) {
    json body = parse_body(req.body);
    auto& slot = slot_for(s, body);
    const bool raw = opt_bool(body, "raw_scores").value_or(false);
    if (!body.contains("inputs")) throw HttpError::bad_request("inputs: required", "inputs");
    const json& in = body["inputs"];
    // TEI's untagged rule: a string or a 2-string array is ONE input; otherwise a list of inputs.
    auto is_pair = [](const json& j) { return j.is_array() && j.size() == 2 && j[0].is_string() && j[1].is_string(); };
    const bool single = in.is_string() || is_pair(in);
    std::vector<json> items = single ? std::vector<json>{in} : std::vector<json>{};
    if (!single) {
      if (!in.is_array()) throw HttpError::bad_request("inputs: expected a string, a pair or a list, got " + type_name(in), "inputs");
      items.assign(in.begin(), in.end());
    }
    check_input_count(items.size(), config(s).max_inputs, "inputs");
    std::vector<eval::ScoreGroup> groups;
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string f = single ? "inputs" : "inputs[" + std::to_string(i) + "]";
      if (items[i].is_string()) {
        groups.push_back(slot.rm->encode_text(items[i].get<std::string>(), f).group);
      } else if (is_pair(items[i])) {  // (prompt, response) through the chat template
        text::Conversation conv = {{"user", items[i][0].get<std::string>()}};
        groups.push_back(slot.rm->encode_chat(conv, items[i][1].get<std::string>(), f).group);
      } else {
        throw HttpError::bad_request(f + ": expected a string or a [prompt, response] pair, got " + type_name(items[i]), f);
      }
    }
    auto rewards = score(s, slot, std::move(groups), items.size());
    json out = json::array();
    for (double r : rewards) out.push_back(json::array({{{"score", raw ? r : sigmoid(r)}, {"label", "LABEL_0"}}}));
    return single ? out[0] : out;
  });
}

}  // namespace rmkit::serve
