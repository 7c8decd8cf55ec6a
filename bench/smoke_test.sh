#!/usr/bin/env bash
# ctest smoke test of the benchmark harness (label "bench"): runs bench_train and bench_score on the
# tiny shape, then the PyTorch reference on the plans they wrote, and checks every JSON against the
# plan: step and batch counts, the warm-up batch (the heaviest: most padded slots, recomputed here
# from the plan), and positive rates. Exit 77 (skipped) when Debian's python3-torch is missing.
#
#   bench/smoke_test.sh BUILD_DIR
set -euo pipefail
BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
if ! "$PY" -c "import torch" 2>/dev/null; then echo "skipped: $PY cannot import torch (apt-get install python3-torch)"; exit 77; fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# (seed 2, one pair per step, lengths capped at 400: the plan's heaviest batch is its third, so the
# warm-up check below can tell "heaviest" from "first")
"$BUILD/bench/bench_train" --shape tiny --pairs-per-step 1 --steps 4 --warmup 1 --threads 1 --seed 2 --max-len 400 \
  --shared-prefix --plan-out "$TMP/train_plan.json" | tail -1 > "$TMP/rm_train.json"
"$PY" "$HERE/reference/rm_reference.py" "$TMP/train_plan.json" --threads 1 --warmup 1 | tail -1 > "$TMP/ref_train.json"
"$BUILD/bench/bench_score" --shape tiny --pairs 8 --batch-pairs 2 --warmup 1 --threads 1 --seed 3 --max-len 160 \
  --plan-out "$TMP/score_plan.json" | tail -1 > "$TMP/rm_score.json"
"$PY" "$HERE/reference/rm_reference.py" "$TMP/score_plan.json" --threads 1 --warmup 1 --mode score | tail -1 > "$TMP/ref_score.json"

"$PY" - "$TMP" <<'PYEOF'
import json, sys
d = sys.argv[1]
load = lambda n: json.load(open(f"{d}/{n}"))
fails = []
def check(cond, what):
    if not cond: fails.append(what)

plan, rm, ref = load("train_plan.json"), load("rm_train.json"), load("ref_train.json")
batches = plan["batches"]
STEPS, PAIRS = 4, 4
check(len(batches) == STEPS, f"train plan has {len(batches)} batches, expected {STEPS}")
slots = [2 * len(b) * max(max(p[0], p[1]) for p in b) for b in batches]  # chosen+rejected rows x longest
heaviest = max(range(len(slots)), key=lambda i: (slots[i], -i))
check(ref["warmup_batch"] == heaviest, f"reference warmed up on batch {ref['warmup_batch']}, heaviest is {heaviest}")
check(ref["steps"] == STEPS and rm["steps"] == STEPS, f"timed steps rmkit {rm['steps']} reference {ref['steps']}, expected {STEPS}")
check(len(rm["step_ms"]) == STEPS and len(rm["step_minor_faults"]) == STEPS, f"rmkit per-step arrays are not {STEPS} long")
check(0 <= rm["warmup_batch"] < STEPS, f"rmkit warmup_batch {rm['warmup_batch']} out of range")
real = sum(p[0] + p[1] for b in batches for p in b)
check(rm["computed_tokens"] <= rm["slots"], "rmkit computed more tokens than slots")
for j, name in ((rm, "rmkit train"), (ref, "reference train")):
    check(j["pairs_per_s"] > 0 and j["tokens_per_s"] > 0 and j["peak_rss_mb"] > 0, f"{name}: non-positive rate or RSS")
# same real tokens per pair on both sides: tokens/s / pairs/s = real tokens / pairs
for j, name in ((rm, "rmkit"), (ref, "reference")):
    per_pair = j["tokens_per_s"] / j["pairs_per_s"]
    check(abs(per_pair - real / PAIRS) < 1e-6 * real, f"{name} counts {per_pair} real tokens per pair, plan has {real / PAIRS}")
check(0 < rm["mfu"] and rm["mfu_executed"] <= rm["mfu"] + 1e-9, f"rmkit mfu {rm['mfu']} executed {rm['mfu_executed']}")

splan, srm, sref = load("score_plan.json"), load("rm_score.json"), load("ref_score.json")
check(sref["steps"] == len(splan["batches"]), f"reference scored {sref['steps']} batches, plan has {len(splan['batches'])}")
for j, name in ((srm, "rmkit score"), (sref, "reference score")):
    check(j["pairs_per_s"] > 0 and j["p99_ms"] >= j["p50_ms"] > 0, f"{name}: bad rate or latency")

for f in fails: print("FAIL:", f)
print("bench smoke:", "ok" if not fails else f"{len(fails)} failures")
sys.exit(1 if fails else 0)
PYEOF
