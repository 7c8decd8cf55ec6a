#!/usr/bin/env bash
# Where LASeR's loop spends its time (issue #15's performance section): one `rmkit laser train`
# iteration on stories260K with the issue's defaults (16 prompts per batch, n = 30, 150 new tokens,
# temperature 0.8) and two reward models, then the generation engine alone (`rmkit generate`) on the
# same prompts with the same sampling. Prints the loop's time split and its generated tokens/s as a
# ratio to the engine's own figure.
#   bash bench/laser_loop_split.sh [BUILD_DIR] [PROMPTS=32]
set -euo pipefail
BUILD=${1:-build}
N=${2:-32}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ASSETS=${RMKIT_ASSETS:-$ROOT/../shared/assets}
RMKIT=$BUILD/rmkit
MODEL=$ASSETS/models/stories260K/stories260K.bin
TOK=$ASSETS/models/stories260K/tok512.model
W=$(mktemp -d /tmp/rmkit_laser_split.XXXXXX)
trap 'rm -rf "$W"' EXIT
python3 - "$W/prompts.jsonl" "$N" <<'PY'
import json, sys
starts = ["Once upon a time, Lily", "Tom had a big red ball", "The little dog ran", "One day, Sue found",
          "Ben and his mom went", "The sun was hot and", "A small bird sat", "Anna wanted to play"]
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"prompt": f"{starts[i % len(starts)]} (story {i})"}) + "\n")
PY
for arm in A B; do
  "$RMKIT" train --model "$MODEL" --tokenizer "$TOK" --chat-template plain --data "$ASSETS/prefs/ultrafeedback_sample.jsonl.gz" \
    --max-steps 2 --batch-size 4 --max-length 96 --seed $([ $arm = A ] && echo 1 || echo 2) --progress off --output "$W/rm$arm" >/dev/null 2>&1
done
"$RMKIT" laser train --policy "$MODEL" --tokenizer "$TOK" --chat-template plain --rm A="$W/rmA" --rm B="$W/rmB" \
  --prompts "$W/prompts.jsonl" --iterations 1 --batch-size 16 --n 30 --max-new-tokens 150 --lr 1e-4 --progress off \
  --output "$W/laser" 2>/dev/null
t0=$(date +%s.%N)
"$RMKIT" generate --model "$MODEL" --tokenizer "$TOK" --chat-template plain --input "$W/prompts.jsonl" --n 30 \
  --temperature 0.8 --max-new-tokens 150 --seed 0 --output "$W/gen.jsonl" 2>/dev/null
t1=$(date +%s.%N)
python3 - "$W/laser/metrics.jsonl" "$W/gen.jsonl" "$t0" "$t1" "$TOK" "$RMKIT" <<'PY'
import json, subprocess, sys
m = [json.loads(l) for l in open(sys.argv[1])]
keys = ["context", "generate", "score", "step", "bandit"]
tot = {k: sum(r["time"][k] for r in m) for k in keys}
wall = sum(r["time"]["total"] for r in m)
gen_tok = sum(r["generated_tokens"] for r in m)
print(f"laser loop: {len(m)} steps, {wall:.2f} s; generated {gen_tok} tokens")
for k in keys:
    print(f"  {k:<9} {tot[k]:8.3f} s  {100 * tot[k] / wall:5.1f} %")
loop_tps = gen_tok / tot["generate"]
rows = [json.loads(l) for l in open(sys.argv[2])]
texts = [c for r in rows for c in r["completions"]]
# token count of the engine's completions, by the same tokenizer
ids = subprocess.run([sys.argv[6], "tokenize", "--tokenizer", sys.argv[5], "--input", "/dev/stdin"],
                     input="".join(json.dumps({"text": t}) + "\n" for t in texts), capture_output=True, text=True).stdout
n_tok = sum(len(json.loads(l)) for l in ids.splitlines() if l.strip())
dt = float(sys.argv[4]) - float(sys.argv[3])
eng_tps = n_tok / dt
print(f"generation inside the loop: {loop_tps:.0f} tokens/s; rmkit generate alone (incl. model load): {eng_tps:.0f} tokens/s;"
      f" ratio {loop_tps / eng_tps:.2f}")
PY
