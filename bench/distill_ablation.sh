#!/usr/bin/env bash
# RM-Distiller's ablation at CPU scale (docs/distill.md): binary annotation < margin-aware scoring
# < + refinement < + generation regularisation, reproduced as a *mechanism* with a programmatic
# teacher whose judgments are right by construction.
#
# Task: real responses from the shared RMB prefs, corrupted by k noise marks " ~~" (k = 0..8);
# true quality = 10 - k. The teacher (bench_distill --serve-noise, an OpenAI-compatible server on
# 127.0.0.1) judges by k, answers with the clean text, and "refines" the rejected response by
# removing half of its marks (a minimal edit), then re-scores it by k. Every mode runs `rmkit distill`
# on the same N training prompts; stories260K RMs train on each mode's output with 3 seeds and are
# scored on held-out corrupted pairs: accuracy and Pearson correlation of the RM's margin with the
# true quality difference.
#   bash bench/distill_ablation.sh [BUILD_DIR] [N_TRAIN] [SEEDS] [MAX_LENGTH]
# MAX_LENGTH: train --max-length, the same for every variant (default 512, the model's context).
# Prompt + response run to ~250 tokens (p90 ~310) with the stories260K tokenizer (a mark " ~~" is 3
# tokens); 160 truncates ~99% of the training pairs at the response end, dropping the marks there
# while scoring sees whole responses (docs/distill.md shows both). Needs python3 only (no numpy).
set -euo pipefail
BUILD=${1:-build}
N=${2:-400}
SEEDS=${3:-"1 2 3"}
MAXLEN=${4:-512}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ASSETS=${RMKIT_ASSETS:-$ROOT/../shared/assets}
RMKIT=$BUILD/rmkit
MODEL=$ASSETS/models/stories260K/stories260K.bin
TOK=$ASSETS/models/stories260K/tok512.bin
W=$(mktemp -d /tmp/rmkit_distill_ablation.XXXXXX)
echo "work dir: $W (train --max-length $MAXLEN)"

python3 - "$ASSETS/prefs/rmb_pairwise.jsonl.gz" "$W" "$N" <<'PY'
import gzip, json, random, sys
src, out, n_train = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(1234)
texts, seen = [], set()
for line in gzip.open(src, "rt"):
    r = json.loads(line)
    t = r["chosen"].replace("\n", " ").strip()
    if not t.isascii() or "~~" in t or len(t) < 120:
        continue
    words = t.split()[:40]
    q = r["prompt"][-1]["content"].replace("\n", " ").strip()[:200]
    if len(words) >= 20 and q.isascii() and q not in seen:  # one response per distinct question
        seen.add(q)
        texts.append((q, " ".join(words)))
    if len(texts) >= n_train + 300:
        break
rng.shuffle(texts)
def corrupt(text, k):
    w = text.split()
    for p in sorted(rng.sample(range(1, len(w) + 1), k), reverse=True):
        w.insert(p, "~~")
    return " ".join(w)
def pair():
    a, b = rng.sample(range(0, 9), 2)
    return min(a, b), max(a, b)
with open(f"{out}/train.jsonl", "w") as f, open(f"{out}/answers.jsonl", "w") as fa:
    for i, (q, t) in enumerate(texts[:n_train]):
        ka, kb = pair()
        f.write(json.dumps({"id": f"t{i}", "prompt": q, "chosen": corrupt(t, ka), "rejected": corrupt(t, kb)}) + "\n")
        fa.write(json.dumps({"question": q, "answer": t}) + "\n")
with open(f"{out}/heldout.jsonl", "w") as f:
    for i, (q, t) in enumerate(texts[n_train:n_train + 300]):
        ka, kb = pair()
        f.write(json.dumps({"id": f"h{i}", "prompt": q, "chosen": corrupt(t, ka), "rejected": corrupt(t, kb),
                            "margin": kb - ka}) + "\n")
print(f"data: {min(n_train, len(texts))} training prompts, {len(texts[n_train:n_train+300])} held-out pairs")
PY

"$BUILD/bench/bench_distill" --serve-noise "$W/answers.jsonl" --port-file "$W/port" &
TEACHER=$!
trap 'kill $TEACHER 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
URL="http://127.0.0.1:$(cat "$W/port")/v1"

for mode in binary scored refined; do
  "$RMKIT" distill --input "$W/train.jsonl" --teacher-url "$URL" --teacher-model noise-teacher --mode "$mode" \
    --workdir "$W/work_$mode" --output "$W/$mode.jsonl" --quiet 2>&1 | grep "distill: wrote"
done
kill $TEACHER 2>/dev/null || true  # the teacher is not needed for training

declare -A LOSS=( [binary]=bt [scored]=margin-mse [refined]=margin-mse [refined_sft]="margin-mse:1,sft:0.1" )
declare -A DATA=( [binary]=binary [scored]=scored [refined]=refined [refined_sft]=refined )
printf "%-12s %-22s %-6s %-6s %-8s %-8s\n" variant loss seed rows accuracy pearson | tee "$W/results.txt"
for v in binary scored refined refined_sft; do
  for s in $SEEDS; do
    out="$W/rm_${v}_$s"
    "$RMKIT" train --model "$MODEL" --tokenizer "$TOK" --chat-template plain --data "$W/${DATA[$v]}.jsonl" \
      --loss "${LOSS[$v]}" --seed "$s" --lr 3e-3 --batch-size 16 --max-length "$MAXLEN" --epochs 3 \
      --warmup-ratio 0.05 --val-fraction 0 --progress off --output "$out" >/dev/null 2>"$out.log" || { cat "$out.log"; exit 1; }
    "$RMKIT" score --model "$out" --data "$W/heldout.jsonl" --output "$out/heldout_scores.jsonl" >/dev/null 2>&1
    python3 - "$out/heldout_scores.jsonl" "$W/heldout.jsonl" "$W/${DATA[$v]}.jsonl" "$v" "${LOSS[$v]}" "$s" <<'PY' | tee -a "$W/results.txt"
import json, statistics, sys
scores = [json.loads(l) for l in open(sys.argv[1])]
truth = {t["id"]: t for t in map(json.loads, open(sys.argv[2]))}
rows = sum(1 for _ in open(sys.argv[3]))
assert len(scores) == len(truth), (len(scores), len(truth))
m = [s["reward_chosen"] - s["reward_rejected"] for s in scores]
d = [float(truth[s["id"]]["margin"]) for s in scores]
acc = sum(x > 0 for x in m) / len(m)
print(f"{sys.argv[4]:<12} {sys.argv[5]:<22} {sys.argv[6]:<6} {rows:<6} {acc:<8.3f} {statistics.correlation(m, d):<8.3f}")
PY
  done
done
python3 - "$W/results.txt" <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
sd = lambda x: st.stdev(x) if len(x) > 1 else 0.0
print("\nvariant       accuracy mean ± sd     pearson mean ± sd   (seeds)")
for v in dict.fromkeys(r[0] for r in rows):
    a = [float(r[4]) for r in rows if r[0] == v]; p = [float(r[5]) for r in rows if r[0] == v]
    print(f"{v:<12}  {st.mean(a):.3f} ± {sd(a):.3f}        {st.mean(p):.3f} ± {sd(p):.3f}      ({len(a)})")
PY
