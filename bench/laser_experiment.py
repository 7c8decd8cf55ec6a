#!/usr/bin/env python3
"""Helper for bench/laser_experiment.sh (issue #15, LASeR at CPU scale): prompts, gold rules,
RM preference pairs, and the metrics read back from `rmkit laser train|bon` and `rmkit generate`.

Two prompt domains the policy (stories260K) can tell apart, each with its own programmatic gold rule
on the continuation:
  happy  story openings about Lily at home / with friends; gold = occurrences of HAPPY words
  ball   story openings about Tom, his dog and a ball;    gold = occurrences of BALL words
(word counts over the lower-cased continuation, whole words only, a word right after a negation
not counted; the two sets are disjoint).

numpy only. Subcommands (all write JSON / JSONL; see each function):
  prompts OUTDIR                         train.jsonl, heldout.jsonl ({"prompt", "category"})
  pairs GEN.jsonl OUTDIR [--per-prompt K] [--seed S]
                                         RM pairs from `rmkit generate` output: happy.jsonl, ball.jsonl,
                                         bad.jsonl (both domains, labels flipped), all.jsonl
  rulestats GEN.jsonl                    spread of each rule per domain over samples (sanity check)
  gold GEN.jsonl                         gold score of generated samples per domain (JSON line)
  arms METRICS.jsonl                     fraction of choices of each arm per domain, rm tokens, time
  bon BON.jsonl                          gold score of `laser bon`'s best response per domain
  rewards METRICS.jsonl...               mean raw bandit reward per domain and arm
  accuracy SCORES.jsonl                  pairwise accuracy of `rmkit score` output
  table RESULTS.jsonl                    the report table (mean +- sd over seeds)
  selftest                               checks the rules and parsers on synthetic inputs
"""
import argparse
import json
import random
import re
import sys

import numpy as np

HAPPY = {"happy", "smile", "smiled", "smiling", "smiles", "fun", "laugh", "laughed", "laughing",
         "joy", "glad", "excited", "love", "loved", "hug", "hugged", "sweet", "nice", "kind",
         "pretty", "friend", "friends"}
BALL = {"ball", "balls", "dog", "dogs", "run", "ran", "running", "kick", "kicked", "throw", "threw",
        "catch", "caught", "jump", "jumped", "park", "fast", "chase", "chased"}
assert not HAPPY & BALL
RULES = {"happy": HAPPY, "ball": BALL}
DOMAINS = ["happy", "ball"]

# Opening sentences per domain; train and held-out prompts use disjoint openings.
OPENINGS = {
    "happy": [
        "Once upon a time, there was a little girl named Lily.",
        "Lily was a little girl who lived in a small house with her mom.",
        "One sunny day, Lily went to visit her grandma.",
        "Lily got a new doll from her mom.",
        "Lily and her friend Sue went to a party.",
        "It was Lily's birthday today.",
        "Lily liked to bake cakes with her mom in the kitchen.",
        "Lily found a pretty flower in the garden.",
        # held out
        "Lily wore her new pink dress to school.",
        "Lily and her mom made cookies for the neighbors.",
        "One morning, Lily saw a rainbow in the sky.",
        "Lily sat under a tree and read a book with her sister.",
    ],
    "ball": [
        "Tom had a big red ball.",
        "Tom and his dog went to the park.",
        "Tom liked to play outside with his dog Max.",
        "One day, Tom found a ball in the grass.",
        "Tom's dog liked to chase sticks.",
        "Tom and his friend Ben played in the yard.",
        "Tom got a new ball for his birthday.",
        "Tom took his dog for a walk.",
        # held out
        "Tom kicked the ball over the fence.",
        "Tom's dog Spot was very fast.",
        "After school, Tom ran to the field with his ball.",
        "Tom and his dad went outside to play catch.",
    ],
}
N_TRAIN_OPENINGS = 8
STARTERS = {"happy": ["She", "Lily", "Then she", "Her mom said", "One day, she"],
            "ball": ["He", "Tom", "Then he", "The dog", "One day, he"]}


def words(text):
    return re.findall(r"[a-z]+", text.lower())


NEGATIONS = {"not", "no", "never", "t"}  # "t": the end of "didn't", "can't", ...


def gold(text, category):
    """Occurrences of the domain's words, a word right after a negation ("not nice", "didn't smile",
    "can't run") not counted."""
    s = RULES[category]
    w = words(text)
    return sum(x in s and (i == 0 or w[i - 1] not in NEGATIONS) for i, x in enumerate(w))


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def cmd_prompts(a):
    train, held = [], []
    for cat in DOMAINS:
        for i, o in enumerate(OPENINGS[cat]):
            for st in STARTERS[cat]:
                (train if i < N_TRAIN_OPENINGS else held).append({"prompt": f"{o} {st}", "category": cat})
    # interleave the domains so that any contiguous batch mixes them
    rng = random.Random(7)
    rng.shuffle(train)
    rng.shuffle(held)
    write_jsonl(f"{a.outdir}/train.jsonl", train)
    write_jsonl(f"{a.outdir}/heldout.jsonl", held)
    print(f"prompts: {len(train)} train, {len(held)} held-out "
          f"({sum(r['category'] == 'happy' for r in train)} happy / {sum(r['category'] == 'ball' for r in train)} ball in train)")


def cmd_pairs(a):
    """For each prompt: best vs worst of its samples by its domain's rule (ties skipped), plus up to
    K-1 further random pairs of samples with different scores (higher = chosen)."""
    rng = random.Random(a.seed)
    out = {c: [] for c in DOMAINS}
    for r in read_jsonl(a.gen):
        cat = r["category"]
        comps = [c for c in r["completions"] if c.strip()]
        sc = [gold(c, cat) for c in comps]
        if len(comps) < 2 or max(sc) == min(sc):
            continue
        order = sorted(range(len(comps)), key=lambda i: sc[i])
        cand = [(order[-1], order[0])]
        tries = 0
        while len(cand) < a.per_prompt and tries < 50 * a.per_prompt:
            tries += 1
            i, j = rng.sample(range(len(comps)), 2)
            if sc[i] == sc[j] or comps[i] == comps[j]:
                continue
            if sc[i] < sc[j]:
                i, j = j, i
            if (i, j) not in cand:
                cand.append((i, j))
        seen = set()
        for i, j in cand:
            if comps[i] == comps[j] or (comps[i], comps[j]) in seen:
                continue
            seen.add((comps[i], comps[j]))
            out[cat].append({"prompt": r["prompt"], "chosen": comps[i], "rejected": comps[j],
                             "category": cat, "margin": sc[i] - sc[j]})
    allrows = []
    for cat in DOMAINS:
        rng.shuffle(out[cat])
        write_jsonl(f"{a.outdir}/{cat}.jsonl", out[cat])
        allrows += out[cat]
    rng.shuffle(allrows)
    write_jsonl(f"{a.outdir}/all.jsonl", allrows)
    bad = [dict(r, chosen=r["rejected"], rejected=r["chosen"], margin=-r["margin"]) for r in allrows]
    write_jsonl(f"{a.outdir}/bad.jsonl", bad)
    print("pairs: " + ", ".join(f"{c} {len(out[c])}" for c in DOMAINS) + f", bad (flipped, both) {len(bad)}")


def cmd_rulestats(a):
    res = {}
    for cat in DOMAINS:
        for rule in DOMAINS:
            v, spread = [], []
            for r in read_jsonl(a.gen):
                if r["category"] != cat:
                    continue
                s = [gold(c, rule) for c in r["completions"]]
                v += s
                spread.append(max(s) - min(s))
            res[f"{cat}_prompts/{rule}_rule"] = {"mean": round(float(np.mean(v)), 3), "sd": round(float(np.std(v)), 3),
                                                 "frac_prompts_with_spread": round(float(np.mean(np.array(spread) > 0)), 3)}
    print(json.dumps(res))


def gold_of_rows(rows, text_of):
    per = {c: [] for c in DOMAINS}
    cross = {c: [] for c in DOMAINS}  # the other domain's rule, to see spill-over
    for r in rows:
        cat = r["category"]
        other = [d for d in DOMAINS if d != cat][0]
        for t in text_of(r):
            per[cat].append(gold(t, cat))
            cross[cat].append(gold(t, other))
    res = {f"gold_{c}": float(np.mean(per[c])) if per[c] else None for c in DOMAINS}
    res["gold_mean"] = float(np.mean([res[f"gold_{c}"] for c in DOMAINS]))
    for c in DOMAINS:
        res[f"cross_{c}"] = float(np.mean(cross[c])) if cross[c] else None
    res["samples"] = sum(len(per[c]) for c in DOMAINS)
    return res


def cmd_gold(a):
    rows = read_jsonl(a.gen)
    print(json.dumps(gold_of_rows(rows, lambda r: r["completions"])))


def cmd_bon(a):
    rows = read_jsonl(a.bon)

    def best(r):
        b = r.get("best")
        if isinstance(b, str):
            return [b]
        if isinstance(b, int):
            return [r["responses"][b]["text"]]
        if isinstance(b, dict):
            return [b.get("text", "")]
        resp = r["responses"]
        return [max(resp, key=lambda x: x["score"])["text"]]

    res = gold_of_rows(rows, best)
    # the oracle (best gold among the n) and the mean of the n, for scale
    res["oracle_mean"] = float(np.mean([max(gold(x["text"], r["category"]) for x in r["responses"]) for r in rows]))
    res["n_mean"] = float(np.mean([np.mean([gold(x["text"], r["category"]) for x in r["responses"]]) for r in rows]))
    rms = {}
    for r in rows:
        rms.setdefault(r["category"], {}).setdefault(str(r.get("rm")), 0)
        rms[r["category"]][str(r.get("rm"))] += 1
    res["rm_by_domain"] = rms
    print(json.dumps(res))


def cmd_arms(a):
    rows = read_jsonl(a.metrics)

    def fractions(rs):
        counts = {c: {} for c in DOMAINS}
        for r in rs:
            arms, cats = r.get("arms") or [], r.get("categories") or []
            if len(arms) != len(cats):
                raise SystemExit(f"{a.metrics}: step {r.get('step')}: {len(arms)} arms vs {len(cats)} categories")
            for arm, cat in zip(arms, cats):
                counts.setdefault(cat, {})
                counts[cat][arm] = counts[cat].get(arm, 0) + 1
        frac = {}
        for cat, d in counts.items():
            tot = sum(d.values())
            frac[cat] = {k: v / tot for k, v in sorted(d.items())} if tot else {}
        return frac

    last = rows[-1] if rows else {}
    last_it = [r for r in rows if r.get("iteration") == last.get("iteration")]
    print(json.dumps({"arm_frac": fractions(rows), "arm_frac_last_iter": fractions(last_it),
                      "rm_tokens": last.get("rm_tokens"), "elapsed_s": last.get("elapsed_s"),
                      "steps": len(rows), "final_dpo_loss": last.get("dpo_loss")}))


def cmd_rewards(a):
    """Mean raw bandit reward (- the pre-update DPO+NLL loss) per domain and arm, over instance-
    granularity runs (per-prompt rewards) or batch runs (the batch's reward, counted per prompt)."""
    acc = {}
    for path in a.metrics:
        for r in read_jsonl(path):
            raw = r.get("raw_reward")
            if raw is None:
                continue
            raws = raw if isinstance(raw, list) else [raw] * len(r["arms"])
            for arm, cat, x in zip(r["arms"], r["categories"], raws):
                if x is not None:
                    acc.setdefault(f"{cat}/{arm}", []).append(x)
    print(json.dumps({k: {"mean": round(float(np.mean(v)), 4), "sd": round(float(np.std(v)), 4), "n": len(v)}
                      for k, v in sorted(acc.items())}))


def cmd_accuracy(a):
    rows = read_jsonl(a.scores)
    by = {}
    for r in rows:
        by.setdefault(r.get("category", "all"), []).append(r["reward_chosen"] > r["reward_rejected"])
    res = {k: float(np.mean(v)) for k, v in by.items()}
    res["all"] = float(np.mean([x for v in by.values() for x in v]))
    res["pairs"] = len(rows)
    print(json.dumps(res))


def ms(v, fmt="{:.2f}"):
    v = [x for x in v if x is not None]
    if not v:
        return "-"
    if len(v) == 1:
        return fmt.format(v[0])
    return (fmt + " ± " + fmt).format(float(np.mean(v)), float(np.std(v, ddof=1)))


def cmd_table(a):
    rows = read_jsonl(a.results)
    train = [r for r in rows if r["kind"] == "train"]
    bon = [r for r in rows if r["kind"] == "bon"]
    base = [r for r in rows if r["kind"] == "base"]
    methods = []
    for r in train:
        if r["method"] not in methods:
            methods.append(r["method"])
    out = []
    if base:
        b = base[0]
        out.append(f"Base policy (no training), same evaluation: gold happy {b['gold_happy']:.2f}, ball "
                   f"{b['gold_ball']:.2f}, mean {b['gold_mean']:.2f}\n")
    # the pool's arms (ensemble methods log their own name: every arm scores every prompt there)
    arms_all = sorted({k for r in train for d in r["arm_frac"].values() for k in d if not k.startswith("ensemble")})
    hdr = ["method", "seeds", "gold happy", "gold ball", "gold mean"] + \
          [f"{d}: {arm}" for d in DOMAINS for arm in arms_all] + ["RM tokens (k)", "wall s"]
    out.append("| " + " | ".join(hdr) + " |")
    out.append("|" + "---|" * len(hdr))
    for m in methods:
        rs = [r for r in train if r["method"] == m]
        cells = [m, str(len(rs)), ms([r["gold_happy"] for r in rs]), ms([r["gold_ball"] for r in rs]),
                 ms([r["gold_mean"] for r in rs])]
        for d in DOMAINS:
            for arm in arms_all:
                if m.startswith("ensemble"):
                    cells.append("all")
                else:
                    cells.append(ms([r["arm_frac"].get(d, {}).get(arm, 0.0) for r in rs]))
        cells.append(ms([r["rm_tokens"] / 1000 if r.get("rm_tokens") is not None else None for r in rs], "{:.1f}"))
        cells.append(ms([r["wall_s"] for r in rs], "{:.0f}"))
        out.append("| " + " | ".join(cells) + " |")
    adaptive = [m for m in methods if not m.startswith(("fixed", "ensemble", "sequential"))]
    if adaptive and all("arm_frac_last_iter" in r for r in train):
        out.append("")
        out.append("Arm choices in the last iteration only (what the selector converged to):")
        out.append("")
        hdr = ["method"] + [f"{d}: {arm}" for d in DOMAINS for arm in arms_all]
        out.append("| " + " | ".join(hdr) + " |")
        out.append("|" + "---|" * len(hdr))
        for m in adaptive:
            rs = [r for r in train if r["method"] == m]
            out.append("| " + " | ".join([m] + [ms([r["arm_frac_last_iter"].get(d, {}).get(arm, 0.0) for r in rs])
                                                for d in DOMAINS for arm in arms_all]) + " |")
    if bon:
        out.append("")
        out.append("Best-of-n on held-out prompts (gold score of the response each selector returns):")
        out.append("")
        hdr = ["selector", "seeds", "gold happy", "gold ball", "gold mean", "RM chosen: happy prompts", "RM chosen: ball prompts",
               "mean of the n", "oracle best of n", "RM tokens (k)", "wall s"]
        out.append("| " + " | ".join(hdr) + " |")
        out.append("|" + "---|" * len(hdr))
        sels = []
        for r in bon:
            if r["method"] not in sels:
                sels.append(r["method"])
        for m in sels:
            rs = [r for r in bon if r["method"] == m]
            chosen = []
            for d in DOMAINS:
                tot = {}
                for r in rs:
                    c = r.get("rm_by_domain", {}).get(d, {})
                    n = sum(c.values()) or 1
                    for k, v in c.items():
                        tot[k] = tot.get(k, 0.0) + v / n / len(rs)
                chosen.append(" ".join(f"{k} {v:.2f}" for k, v in sorted(tot.items())))
            out.append("| " + " | ".join([m, str(len(rs)), ms([r["gold_happy"] for r in rs]), ms([r["gold_ball"] for r in rs]),
                                          ms([r["gold_mean"] for r in rs])] + chosen +
                                         [ms([r["n_mean"] for r in rs]), ms([r["oracle_mean"] for r in rs]),
                                          ms([r["rm_tokens"] / 1000 if r.get("rm_tokens") is not None else None for r in rs], "{:.1f}"),
                                          ms([r["wall_s"] for r in rs], "{:.1f}")]) + " |")
    print("\n".join(out))


def cmd_selftest(a):
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        selftest_in(d)
    print("selftest: ok")


def selftest_in(d):
    import contextlib, io
    assert gold("She smiled and laughed, happy with her friends.", "happy") == 4
    assert gold("The dog ran after the ball. Balls!", "ball") == 4
    assert gold("Smiled happily", "happy") == 1  # whole words only
    assert gold("It is not nice. She didn't smile, she was never happy. Nice!", "happy") == 1  # negations
    assert gold("He can't run. The dog ran.", "ball") == 2

    def run(f, **kw):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            f(argparse.Namespace(**kw))
        return json.loads(buf.getvalue().strip().splitlines()[-1])

    write_jsonl(f"{d}/gen.jsonl", [
        {"prompt": "p1", "category": "happy", "completions": [" happy fun", " a dog", " smiled"]},
        {"prompt": "p2", "category": "ball", "completions": [" ball ball", " no", " no"]},
        {"prompt": "p3", "category": "ball", "completions": [" same", " same"]}])  # no spread: skipped
    g = run(cmd_gold, gen=f"{d}/gen.jsonl")
    assert abs(g["gold_happy"] - 1.0) < 1e-9 and abs(g["gold_ball"] - 0.4) < 1e-9, g
    assert abs(g["cross_happy"] - 1 / 3) < 1e-9 and g["samples"] == 8, g
    with contextlib.redirect_stdout(io.StringIO()):
        cmd_pairs(argparse.Namespace(gen=f"{d}/gen.jsonl", outdir=d, per_prompt=8, seed=1))
    hp, bp, bad = read_jsonl(f"{d}/happy.jsonl"), read_jsonl(f"{d}/ball.jsonl"), read_jsonl(f"{d}/bad.jsonl")
    assert all(gold(r["chosen"], "happy") > gold(r["rejected"], "happy") for r in hp) and len(hp) == 3, hp
    assert len(bp) == 1 and bp[0]["chosen"] == " ball ball", bp  # " no" twice: one distinct pair
    assert len(bad) == 4 and all(gold(r["chosen"], r["category"]) < gold(r["rejected"], r["category"]) for r in bad)
    write_jsonl(f"{d}/metrics.jsonl", [
        {"step": 1, "iteration": 0, "arms": ["A", "B", "B"], "categories": ["happy", "ball", "happy"],
         "rm_tokens": 100, "elapsed_s": 1.0, "dpo_loss": 0.7, "raw_reward": 0.1},
        {"step": 2, "iteration": 1, "arms": ["A", "bad"], "categories": ["happy", "ball"],
         "rm_tokens": 250, "elapsed_s": 2.5, "dpo_loss": 0.6, "raw_reward": 0.2}])
    m = run(cmd_arms, metrics=f"{d}/metrics.jsonl")
    assert m["arm_frac"]["happy"] == {"A": 2 / 3, "B": 1 / 3} and m["arm_frac"]["ball"] == {"B": 0.5, "bad": 0.5}, m
    assert m["rm_tokens"] == 250 and m["steps"] == 2, m
    assert m["arm_frac_last_iter"] == {"happy": {"A": 1.0}, "ball": {"bad": 1.0}}, m
    write_jsonl(f"{d}/bon.jsonl", [
        {"prompt": "p1", "category": "happy", "rm": "A", "best": 1,
         "responses": [{"text": " no", "score": 0.1}, {"text": " happy fun", "score": 0.9}]},
        {"prompt": "p2", "category": "ball", "rm": "B", "best": " ball",
         "responses": [{"text": " ball", "score": 0.5}, {"text": " ball dog", "score": 0.2}]}])
    b = run(cmd_bon, bon=f"{d}/bon.jsonl")
    assert b["gold_happy"] == 2 and b["gold_ball"] == 1 and b["oracle_mean"] == 2 and b["n_mean"] == 1.25, b
    write_jsonl(f"{d}/scores.jsonl", [{"category": "happy", "reward_chosen": 1, "reward_rejected": 0},
                                      {"category": "ball", "reward_chosen": 0, "reward_rejected": 1}])
    acc = run(cmd_accuracy, scores=f"{d}/scores.jsonl")
    assert acc == {"happy": 1.0, "ball": 0.0, "all": 0.5, "pairs": 2}, acc
    rows = [dict(kind="base", method="base", seed=0, **g)]
    for s in (1, 2):
        rows.append(dict(kind="train", method="linucb:batch", seed=s, wall_s=10.0 + s, **g, **m))
        rows.append(dict(kind="bon", method="laser", seed=s, wall_s=1.0, **b))
    write_jsonl(f"{d}/results.jsonl", rows)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cmd_table(argparse.Namespace(results=f"{d}/results.jsonl"))
    t = buf.getvalue()
    assert "| linucb:batch | 2 | 1.00 ± 0.00 | 0.40 ± 0.00 |" in t and "12 ± 1" in t and "| 0.2 ± 0.0 |" in t, t
    assert "| laser | 2 | 2.00 ± 0.00 | 1.00 ± 0.00 | 1.50 ± 0.00 | A 1.00 | B 1.00 |" in t, t
    assert "| linucb:batch | 1.00 ± 0.00 | 0.00 ± 0.00 | 0.00 ± 0.00 | 0.00 ± 0.00 | 0.00 ± 0.00 | 1.00 ± 0.00 |" in t, t


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("prompts"); s.add_argument("outdir"); s.set_defaults(f=cmd_prompts)
    s = sub.add_parser("pairs"); s.add_argument("gen"); s.add_argument("outdir")
    s.add_argument("--per-prompt", type=int, default=8); s.add_argument("--seed", type=int, default=1)
    s.set_defaults(f=cmd_pairs)
    s = sub.add_parser("rulestats"); s.add_argument("gen"); s.set_defaults(f=cmd_rulestats)
    s = sub.add_parser("gold"); s.add_argument("gen"); s.set_defaults(f=cmd_gold)
    s = sub.add_parser("bon"); s.add_argument("bon"); s.set_defaults(f=cmd_bon)
    s = sub.add_parser("arms"); s.add_argument("metrics"); s.set_defaults(f=cmd_arms)
    s = sub.add_parser("rewards"); s.add_argument("metrics", nargs="+"); s.set_defaults(f=cmd_rewards)
    s = sub.add_parser("accuracy"); s.add_argument("scores"); s.set_defaults(f=cmd_accuracy)
    s = sub.add_parser("table"); s.add_argument("results"); s.set_defaults(f=cmd_table)
    s = sub.add_parser("selftest"); s.set_defaults(f=cmd_selftest)
    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
