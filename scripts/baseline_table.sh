#!/usr/bin/env bash
# The project's first reward-model baseline table (issue #3): stories260K reward models trained with
# each objective, evaluated on LLMBar, RM-Bench chat/code/safety, HH-RLHF harmless and the
# UltraFeedback eval split, with the "longer response wins" baseline beside every column.
#
#   scripts/baseline_table.sh [BUILD_DIR] [OUT_DIR]
#   env: RMB_PAIRS=4000 (every 3rd RMB pairwise row, up to this many) STEPS_RMB=0 (0 = 1 epoch)
#        UF_EPOCHS=3 MAX_LENGTH=256 BATCH=16 LR=1e-3 THREADS=0
#
# Training sets and objectives:
#   RMB slice       bt | bt:1,dpo:0.2 (HAF-RM, beta 0.1) | bt:1,sft:0.1 (RM-Distiller's generation term)
#   UF train split  bt | bt-margin (m = GPT-4 score difference) | margin-mse (raw GPT-4 scores)
# RMB has no annotator scores, so the score-based objectives train on UltraFeedback's 1,000-pair
# train split (a bt run on the same split is the comparison). No teacher LLM ships with the
# assets, so the sft term fits the chosen reply (teacher_response := chosen).
# Writes OUT/baseline_table.md (printed too) and OUT/baseline_table.json.
set -euo pipefail
BUILD=${1:-build}
OUT=${2:-baseline-out}
RMKIT=$(cd "$BUILD" && pwd)/rmkit
ASSETS=${RMKIT_ASSETS:-$(cd "$(dirname "$0")/.." && pwd)/../shared/assets}
RMB_PAIRS=${RMB_PAIRS:-4000}
STEPS_RMB=${STEPS_RMB:-0}
UF_EPOCHS=${UF_EPOCHS:-3}
MAX_LENGTH=${MAX_LENGTH:-256}
BATCH=${BATCH:-16}
LR=${LR:-1e-3}
THREADS=${THREADS:-0}
PY=python3
mkdir -p "$OUT/data"
MODEL="$ASSETS/models/stories260K/stories260K.bin"
TOK="$ASSETS/models/stories260K/tok512.model"
[ -f "$MODEL" ] || { echo "baseline_table: $MODEL not found (set RMKIT_ASSETS)" >&2; exit 1; }

# ---- data slices
$PY - "$ASSETS/prefs" "$OUT/data" "$RMB_PAIRS" <<'PYEOF'
import gzip, json, sys
src, dst, rmb_pairs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def rows(name):
    with gzip.open(f"{src}/{name}", "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
def write(name, items):
    with open(f"{dst}/{name}.jsonl", "w", encoding="utf-8") as f:
        for r in items:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
rmb = [r for i, r in enumerate(rows("rmb_pairwise.jsonl.gz")) if i % 3 == 0][:rmb_pairs]
write("rmb_train", rmb)
write("rmb_train_sft", [dict(r, teacher_response=r["chosen"]) for r in rmb])
uf = list(rows("ultrafeedback_sample.jsonl.gz"))
write("uf_train", [r for r in uf if r.get("subset") == "train"])
write("uf_eval", [r for r in uf if r.get("subset") == "eval"])
rb = list(rows("rm_bench_chat_code_safety.jsonl.gz"))
write("rm_bench_chat", [r for r in rb if r["category"] == "chat"])
write("rm_bench_code", [r for r in rb if r["category"] == "code"])
write("rm_bench_safety", [r for r in rb if r["category"].startswith("safety")])
write("llmbar", rows("llmbar.jsonl.gz"))
write("hh_harmless", rows("hh_rlhf_harmless_base_test.jsonl.gz"))
PYEOF
D="$OUT/data"
EVAL_FILES=("$D/llmbar.jsonl" "$D/rm_bench_chat.jsonl" "$D/rm_bench_code.jsonl" "$D/rm_bench_safety.jsonl"
            "$D/hh_harmless.jsonl" "$D/uf_eval.jsonl")

# ---- training + evaluation
run() {  # name data loss extra-args...
  local name=$1 data=$2 loss=$3; shift 3
  if [ ! -f "$OUT/$name/eval/eval.json" ]; then
    echo "== $name: --loss $loss on $(basename "$data")" >&2
    "$RMKIT" train --model "$MODEL" --tokenizer "$TOK" --data "$data" --output "$OUT/$name/model" --overwrite \
      --chat-template plain --max-length "$MAX_LENGTH" --batch-size "$BATCH" --lr "$LR" --warmup-ratio 0.05 \
      --val-fraction 0.05 --loss "$loss" --threads "$THREADS" --progress lines "$@" > "$OUT/$name.train.json"
    "$RMKIT" eval --model "$OUT/$name/model" --data "${EVAL_FILES[@]}" --output "$OUT/$name/eval" \
      --metrics "$OUT/$name/model/metrics.jsonl" --max-length "$MAX_LENGTH" --threads "$THREADS" > /dev/null
  fi
}
RMB_STEPS=(); [ "$STEPS_RMB" -gt 0 ] && RMB_STEPS=(--max-steps "$STEPS_RMB")
run rmb_bt      "$D/rmb_train.jsonl"     bt                "${RMB_STEPS[@]}"
run rmb_bt_dpo  "$D/rmb_train.jsonl"     bt:1,dpo:0.2      "${RMB_STEPS[@]}" --beta 0.1
run rmb_bt_sft  "$D/rmb_train_sft.jsonl" bt:1,sft:0.1      "${RMB_STEPS[@]}"
run uf_bt        "$D/uf_train.jsonl"     bt                --epochs "$UF_EPOCHS"
run uf_bt_margin "$D/uf_train.jsonl"     bt-margin         --epochs "$UF_EPOCHS"
run uf_margin_mse "$D/uf_train.jsonl"    margin-mse        --epochs "$UF_EPOCHS"

# ---- table
$PY - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
runs = [("rmb_bt", "RMB", "bt"), ("rmb_bt_dpo", "RMB", "bt + 0.2 dpo (HAF-RM)"), ("rmb_bt_sft", "RMB", "bt + 0.1 sft"),
        ("uf_bt", "UF train", "bt"), ("uf_bt_margin", "UF train", "bt-margin"), ("uf_margin_mse", "UF train", "margin-mse")]
cols = ["llmbar", "rm_bench_chat", "rm_bench_code", "rm_bench_safety", "hh_harmless", "uf_eval"]
heads = ["LLMBar", "RM-Bench chat", "RM-Bench code", "RM-Bench safety", "HH harmless", "UF eval"]
table, length = [], None
for name, data, loss in runs:
    ev = json.load(open(f"{out}/{name}/eval/eval.json"))
    tr = json.load(open(f"{out}/{name}.train.json"))
    acc = {c: ev["accuracy"]["by_file"][c] for c in cols}
    length = {c: ev["length_bias"]["longer_wins"]["by_file"][c] for c in cols}
    table.append({"run": name, "train_data": data, "loss": loss, "steps": tr["steps"],
                  "val_accuracy": tr.get("val_accuracy"), "seconds": tr["seconds"],
                  "accuracy": {c: acc[c]["acc"] for c in cols}, "n": {c: acc[c]["n"] for c in cols},
                  "rm_bench": {k: ev["rm_bench"].get(k) for k in ("easy", "normal", "hard")}})
lines = ["| train data | loss | steps | val acc | " + " | ".join(heads) + " |",
         "|---|---|---|---|" + "---|" * len(cols)]
for r in table:
    lines.append(f"| {r['train_data']} | {r['loss']} | {r['steps']} | {r['val_accuracy']:.3f} | " +
                 " | ".join(f"{r['accuracy'][c]:.3f}" for c in cols) + " |")
lines.append("| — | longer response wins | — | — | " + " | ".join(f"{length[c]['acc']:.3f}" for c in cols) + " |")
lines.append("| — | n pairs | | | " + " | ".join(str(table[0]["n"][c]) for c in cols) + " |")
md = "\n".join(lines) + "\n"
open(f"{out}/baseline_table.md", "w").write(md)
json.dump({"runs": table, "length_baseline": {c: length[c]["acc"] for c in cols}},
          open(f"{out}/baseline_table.json", "w"), indent=2)
print(md)
PYEOF
