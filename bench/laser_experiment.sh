#!/usr/bin/env bash
# LASeR at CPU scale (issue #15; results in docs/laser.md, "## Experiment").
#
# Two prompt domains stories260K can tell apart, each with a programmatic gold rule on the
# continuation (bench/laser_experiment.py): "happy" (Lily stories; gold = count of happy words) and
# "ball" (Tom, his dog and a ball; gold = count of ball/dog/run words). A pool of three stories260K
# reward models trained with `rmkit train` on pairs from the base policy's samples, labelled by the
# rules: A (happy pairs, happy rule), B (ball pairs, ball rule), bad (pairs of both domains with the
# labels flipped). Then `rmkit laser train` with every selection method for the same budget and
# seeds, the trained policy sampled on held-out prompts and scored by the gold rule of each prompt's
# domain; arm-choice fractions per domain, RM tokens and wall time from metrics.jsonl; and a
# best-of-n comparison with `rmkit laser bon`.
#
#   bash bench/laser_experiment.sh BUILD_DIR [SEEDS]        (BUILD_DIR holds the rmkit binary)
#
# Environment (defaults in brackets): LASER_WORKDIR [mktemp -d] (reused: finished steps are skipped),
# ITERATIONS [4] (passes over the 80 training prompts), BATCH [4] (so 80 optimisation steps = bandit
# rounds at batch granularity), NSAMP [8] (samples per prompt in training), MAXNEW [48], LR [1e-4],
# THREADS [2], EVAL_N [16] (samples per held-out prompt), BON_N [16], RM_STEPS [150],
# METHODS [all nine], RUN_TIMEOUT [300] (seconds per laser run), STAGE [all | data],
# SEED_STRIDE [100000] (seed s runs with --seed s*SEED_STRIDE).
set -euo pipefail
BUILD=${1:?usage: laser_experiment.sh BUILD_DIR [SEEDS]}
SEEDS=${2:-"1 2 3"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ASSETS=${RMKIT_ASSETS:-$ROOT/../shared/assets}
[ -d "$ASSETS/models/stories260K" ] || ASSETS=/work/shared/assets
RMKIT=$(cd "$BUILD" && pwd)/rmkit
PY="/usr/bin/python3 $ROOT/bench/laser_experiment.py"
MODEL=$ASSETS/models/stories260K/stories260K.bin
TOK=$ASSETS/models/stories260K/tok512.model
W=${LASER_WORKDIR:-$(mktemp -d /tmp/rmkit_laser_exp.XXXXXX)}
mkdir -p "$W"
ITERATIONS=${ITERATIONS:-4}
BATCH=${BATCH:-4}
NSAMP=${NSAMP:-8}
MAXNEW=${MAXNEW:-48}
LR=${LR:-1e-4}
THREADS=${THREADS:-2}
EVAL_N=${EVAL_N:-16}
BON_N=${BON_N:-16}
RM_STEPS=${RM_STEPS:-150}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
STAGE=${STAGE:-all}
# Seed s runs with --seed s*SEED_STRIDE: laser train/bon seed sample i of the k-th prompt slot with
# seed + k*n + i, so seeds 1, 2, 3 would share almost all samples; a run draws < 100000 such seeds.
SEED_STRIDE=${SEED_STRIDE:-100000}
# The policy is a story model, not a chat model: the custom template "{content}" renders a prompt as
# its raw text (BOS + text, no generation marker) and a response as raw text appended to it, exactly
# what `rmkit generate` does with a string prompt, for the policy and for the RMs alike.
TEMPLATE=${TEMPLATE:-"{content}"}
METHODS=${METHODS:-"linucb:batch linucb:instance random fixed:A fixed:B fixed:bad ensemble-mean ensemble-agreement sequential"}
echo "work dir: $W"
now() { date +%s.%N; }
elapsed() { /usr/bin/python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$1" "$(now)"; }

# ---- 1. prompts and base-policy samples --------------------------------------------------------
if [ ! -s "$W/heldout.jsonl" ]; then $PY prompts "$W"; fi
gen() {  # gen MODEL INPUT N SEED OUTPUT [extra...]
  local m=$1 in=$2 n=$3 seed=$4 out=$5; shift 5
  timeout 600 "$RMKIT" generate --model "$m" --tokenizer "$TOK" --input "$in" --n "$n" --temperature 0.8 \
    --max-new-tokens "$MAXNEW" --seed "$seed" --threads "$THREADS" --output "$out" "$@" 2>"$out.log"
}
if [ ! -s "$W/gen_rmtrain.jsonl" ]; then gen "$MODEL" "$W/train.jsonl" 32 100 "$W/gen_rmtrain.jsonl"; fi
if [ ! -s "$W/gen_rmheld.jsonl" ]; then gen "$MODEL" "$W/heldout.jsonl" 16 200 "$W/gen_rmheld.jsonl"; fi
echo "rule spread over base-policy samples (train prompts):"
$PY rulestats "$W/gen_rmtrain.jsonl"

# ---- 2. RM pool -----------------------------------------------------------------------------
mkdir -p "$W/pairs_train" "$W/pairs_held"
$PY pairs "$W/gen_rmtrain.jsonl" "$W/pairs_train" --per-prompt 8 --seed 1
$PY pairs "$W/gen_rmheld.jsonl" "$W/pairs_held" --per-prompt 4 --seed 2
declare -A RMDATA=( [A]=happy [B]=ball [bad]=bad )
declare -A RMVAL=( [A]=happy [B]=ball [bad]=bad )
for rm in A B bad; do
  if [ ! -s "$W/rm/$rm/model.safetensors" ]; then
    t0=$(now)
    timeout 900 "$RMKIT" train --model "$MODEL" --tokenizer "$TOK" --chat-template "$TEMPLATE" \
      --data "$W/pairs_train/${RMDATA[$rm]}.jsonl" --val-data "$W/pairs_held/${RMVAL[$rm]}.jsonl" \
      --loss bt --lr 3e-3 --batch-size 16 --max-length 128 --warmup-ratio 0.05 --max-steps "$RM_STEPS" \
      --seed 1 --threads "$THREADS" --progress off --output "$W/rm/$rm" --overwrite >"$W/rm_$rm.log" 2>&1
    echo "trained RM $rm on pairs_train/${RMDATA[$rm]}.jsonl in $(elapsed "$t0") s"
  fi
done
# accuracy of every RM on the held-out pairs of each domain (gold labels, not flipped)
if [ ! -s "$W/rm_accuracy.jsonl" ]; then
  for rm in A B bad; do
    for d in happy ball; do
      timeout 300 "$RMKIT" score --model "$W/rm/$rm" --tokenizer "$TOK" --chat-template "$TEMPLATE" \
        --data "$W/pairs_held/$d.jsonl" --threads "$THREADS" --output "$W/score_${rm}_$d.jsonl" >/dev/null 2>&1
      acc=$($PY accuracy "$W/score_${rm}_$d.jsonl")
      echo "{\"rm\": \"$rm\", \"domain\": \"$d\", \"acc\": $acc}" >>"$W/rm_accuracy.jsonl"
    done
  done
fi
echo "held-out pairwise accuracy (gold labels) per RM and domain:"
/usr/bin/python3 - "$W/rm_accuracy.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| RM | happy pairs | ball pairs |\n|---|---|---|")
for rm in ["A", "B", "bad"]:
    a = {r["domain"]: r["acc"]["all"] for r in rows if r["rm"] == rm}
    print(f"| {rm} | {a['happy']:.3f} | {a['ball']:.3f} |")
print(f"({rows[0]['acc']['pairs']} happy / {rows[1]['acc']['pairs']} ball held-out pairs)")
PY

# ---- 3. evaluation of a policy: gold score of its samples on held-out prompts ---------------
RESULTS=$W/results.jsonl
evaluate() {  # evaluate POLICY OUTPREFIX -> prints the gold JSON
  gen "$1" "$W/heldout.jsonl" "$EVAL_N" 5000 "$2.eval.jsonl"
  $PY gold "$2.eval.jsonl"
}
if ! grep -q '"kind": "base"' "$RESULTS" 2>/dev/null; then
  g=$(evaluate "$MODEL" "$W/base")
  echo "{\"kind\": \"base\", \"method\": \"base\", \"seed\": 0, $(echo "$g" | sed 's/^{//')" >>"$RESULTS"
fi
echo "base policy on held-out prompts: $(grep '"kind": "base"' "$RESULTS")"

if [ "$STAGE" = data ]; then echo "STAGE=data: stopping before LASeR"; exit 0; fi
if ! "$RMKIT" laser --help >/dev/null 2>&1; then
  echo "this rmkit has no 'laser' command: stopping after the data / RM stage" >&2
  exit 3
fi

# ---- 4. LASeR and baselines -----------------------------------------------------------------
POOL=(--rm "A=$W/rm/A" --rm "B=$W/rm/B" --rm "bad=$W/rm/bad")
for m in $METHODS; do
  case $m in
    linucb:batch) flags=(--bandit linucb --granularity batch) ;;
    linucb:instance) flags=(--bandit linucb --granularity instance) ;;
    *) flags=(--bandit "$m") ;;
  esac
  tag=${m//:/_}
  for s in $SEEDS; do
    out=$W/runs/${tag}_s$s
    if grep -q "\"kind\": \"train\", \"method\": \"$m\", \"seed\": $s," "$RESULTS" 2>/dev/null; then continue; fi
    rm -rf "$out"; mkdir -p "$W/runs"
    t0=$(now)
    if ! timeout "$RUN_TIMEOUT" "$RMKIT" laser train --policy "$MODEL" --tokenizer "$TOK" "${POOL[@]}" \
        --prompts "$W/train.jsonl" --output "$out" "${flags[@]}" --iterations "$ITERATIONS" --batch-size "$BATCH" \
        --n "$NSAMP" --temperature 0.8 --max-new-tokens "$MAXNEW" --lr "$LR" --seed $((s * SEED_STRIDE)) --chat-template "$TEMPLATE" \
        --threads "$THREADS" >"$out.log" 2>&1; then
      echo "laser train $m seed $s failed (see $out.log):" >&2; tail -5 "$out.log" >&2; exit 1
    fi
    wall=$(elapsed "$t0")
    g=$(evaluate "$out/policy" "$out")
    arms=$($PY arms "$out/metrics.jsonl")
    echo "{\"kind\": \"train\", \"method\": \"$m\", \"seed\": $s, \"wall_s\": $wall, $(echo "$g" | sed 's/^{//;s/}$//'), $(echo "$arms" | sed 's/^{//')" >>"$RESULTS"
    echo "$m seed $s: $wall s, $(echo "$g" | cut -c1-90)"
  done
done

# ---- 5. best-of-n with `laser bon` on held-out prompts ---------------------------------------
BON_STATE_METHOD=${BON_STATE_METHOD:-linucb_instance}
for s in $SEEDS; do
  for sel in laser fixed:A fixed:B fixed:bad random ensemble-mean; do
    if grep -q "\"kind\": \"bon\", \"method\": \"$sel\", \"seed\": $s," "$RESULTS" 2>/dev/null; then continue; fi
    case $sel in
      laser) bflags=(--bandit-state "$W/runs/${BON_STATE_METHOD}_s$s/bandit.json") ;;
      *) bflags=(--bandit "$sel") ;;
    esac
    out=$W/bon_${sel//:/_}_s$s.jsonl
    t0=$(now)
    if ! timeout "$RUN_TIMEOUT" "$RMKIT" laser bon --policy "$MODEL" --tokenizer "$TOK" "${POOL[@]}" "${bflags[@]}" \
        --prompts "$W/heldout.jsonl" --n "$BON_N" --temperature 0.8 --max-new-tokens "$MAXNEW" --seed $((s * SEED_STRIDE)) \
        --chat-template "$TEMPLATE" --threads "$THREADS" --output "$out" >"$out.log" 2>&1; then
      echo "laser bon $sel seed $s failed (see $out.log):" >&2; tail -5 "$out.log" >&2; exit 1
    fi
    wall=$(elapsed "$t0")
    b=$($PY bon "$out")
    rmtok=$(grep -o 'RM tokens [0-9]*' "$out.log" | tail -1 | awk '{print $3}')
    echo "{\"kind\": \"bon\", \"method\": \"$sel\", \"seed\": $s, \"wall_s\": $wall, \"rm_tokens\": ${rmtok:-null}, $(echo "$b" | sed 's/^{//')" >>"$RESULTS"
  done
done

# ---- 6. table --------------------------------------------------------------------------------
echo
echo "budget: --iterations $ITERATIONS --batch-size $BATCH --n $NSAMP --max-new-tokens $MAXNEW --lr $LR; seeds: $SEEDS (x $SEED_STRIDE);"
echo "evaluation: $EVAL_N samples per held-out prompt (temperature 0.8, seed 5000); bon: n $BON_N"
$PY table "$RESULTS" | tee "$W/table.md"
