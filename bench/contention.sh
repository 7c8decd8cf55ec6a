#!/usr/bin/env bash
# Speed on a busy machine: the same 30-step stories260K training run idle and beside a CPU hog (one
# busy-looping process, i.e. one core taken on a 2-core machine), in one invocation, for each OpenMP
# wait setting; prints seconds and the busy/idle throughput ratio (goal: >= 0.45 on 2 cores, with the
# idle time within 5 % of the old default).
#
#   bench/contention.sh [path/to/rmkit]        (default: build/rmkit; RMKIT_ASSETS as for the tests)
#   STEPS=30 REPEATS=3 SETTINGS="default GOMP_SPINCOUNT=300000 OMP_WAIT_POLICY=PASSIVE" bench/contention.sh
#
# "default" is what rmkit sets itself (a bounded GOMP_SPINCOUNT, see src/rmkit/core/cpu_env.cpp);
# GOMP_SPINCOUNT=300000 is GNU OpenMP's own default (what rmkit ran with before); PASSIVE never spins.
# Each figure is the median of REPEATS runs. Needs an otherwise idle machine to mean anything.
set -euo pipefail
RMKIT=${1:-build/rmkit}
STEPS=${STEPS:-30}
REPEATS=${REPEATS:-3}
SETTINGS=${SETTINGS:-"default GOMP_SPINCOUNT=300000 OMP_WAIT_POLICY=PASSIVE"}
ASSETS=${RMKIT_ASSETS:-../shared/assets}
MODEL=$ASSETS/models/stories260K/stories260K.bin
TOK=$ASSETS/models/stories260K/tok512.model
[ -x "$RMKIT" ] || { echo "contention.sh: no rmkit binary at $RMKIT" >&2; exit 2; }
[ -f "$MODEL" ] || { echo "contention.sh: missing $MODEL (set RMKIT_ASSETS)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/rmkit_contention.XXXXXX)
HOG=""
cleanup() { if [ -n "$HOG" ]; then kill "$HOG" 2>/dev/null || true; fi; rm -rf "$WORK"; }
trap cleanup EXIT
{ zcat "$ASSETS/prefs/ultrafeedback_sample.jsonl.gz" || true; } | head -n 400 > "$WORK/data.jsonl"

one_run() {  # $1 = env setting ("default" = none); prints seconds
  local setting=$1 t0 t1
  local -a envs=()
  [ "$setting" != default ] && envs=("$setting")
  t0=$(date +%s.%N)
  env "${envs[@]}" "$RMKIT" train --model "$MODEL" --tokenizer "$TOK" --data "$WORK/data.jsonl" \
    --output "$WORK/out" --overwrite --max-steps "$STEPS" --batch-size 8 --max-length 256 \
    --chat-template plain --lr 1e-3 --val-fraction 0 --progress off >/dev/null 2>"$WORK/err" \
    || { cat "$WORK/err" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

timed() {  # $1 setting -> median seconds of REPEATS runs
  local i
  for i in $(seq "$REPEATS"); do one_run "$1"; done | median
}

printf '%-28s %10s %10s %12s\n' setting idle_s busy_s busy/idle
for s in $SETTINGS; do
  idle=$(timed "$s")
  bash -c 'while :; do :; done' & HOG=$!
  sleep 0.2
  busy=$(timed "$s")
  kill "$HOG"; wait "$HOG" 2>/dev/null || true; HOG=""
  ratio=$(echo "$idle / $busy" | bc -l)
  printf '%-28s %10.2f %10.2f %12.3f\n' "$s" "$idle" "$busy" "$ratio"
done
echo "(throughput ratio busy/idle = idle_s / busy_s; $STEPS steps, batch 8, max length 256, median of $REPEATS; $(nproc) CPUs)"
