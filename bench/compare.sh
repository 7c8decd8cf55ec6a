#!/usr/bin/env bash
# Runs rmkit and the PyTorch reference alternately on the same shapes and data, RUNS times, and
# prints per-shape median ratios (rmkit / reference) for training pairs/s, tokens/s, scoring pairs/s
# and peak memory, against the reference run two ways:
#   default: as a user runs it (glibc malloc, OpenBLAS kernel auto-detection, AVX2 ATen dispatch)
#   tuned:   the same allocator (tcmalloc), OPENBLAS_CORETYPE and ATEN_CPU_CAPABILITY as rmkit
# rmkit itself runs under that same tuned env: rmkit picks SkylakeX/avx512 on its own only when the
# caller's env does not name them, so an inherited OPENBLAS_CORETYPE=Haswell (as some images set)
# would otherwise give rmkit Haswell kernels (~0.55x the SkylakeX mm rate here) beside a SkylakeX
# reference. Every JSON records the core type and dispatch it ran with.
# rmkit runs its default paths: length-grouped batches and the shared prompt (train and score).
# Both use the same thread count and time every batch of the plan after two untimed warm-up steps
# on their own heaviest batch (the steady state: see docs/performance.md, "Warm-up and timing").
# The last line is one JSON object per shape (a list when several).
#
#   bench/compare.sh [BUILD_DIR]      env: SHAPES="small base" RUNS=5 THREADS=2
#                                          DEFAULT_SHAPES="small base" (shapes that also run the
#                                          default reference; on base it takes ~10 of a run's ~15
#                                          minutes and peaks near 24 GiB), KEEP=dir
set -euo pipefail
BUILD=${1:-build}
SHAPES=${SHAPES:-small base}
RUNS=${RUNS:-5}
THREADS=${THREADS:-$(nproc)}
DEFAULT_SHAPES=${DEFAULT_SHAPES-$SHAPES}  # set but empty: no default runs
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
REF=$HERE/reference/rm_reference.py
# KEEP=dir keeps every run's JSON (and logs) there instead of a temp directory removed at exit.
if [ -n "${KEEP:-}" ]; then TMP=$KEEP; mkdir -p "$TMP"; else TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT; fi
TCMALLOC=$(ls /usr/lib/*/libtcmalloc_minimal.so.4 2>/dev/null | head -1)

steps_for() { case $1 in base) echo "3";; small) echo "6";; *) echo "8";; esac; }
pairs_for() { case $1 in base) echo "4";; *) echo "8";; esac; }

# run_json OUT CMD...: the command's last stdout line (its JSON) into OUT, or {"failed": ...} when it
# fails (e.g. the default reference killed for memory on `base`), so one failure doesn't end the run.
run_json() {
  local out=$1; shift
  local rc=0
  "$@" > "$out.log" || rc=$?
  if [ "$rc" -eq 0 ]; then tail -1 "$out.log" > "$out"
  else
    echo "{\"failed\": \"exit $rc\"}" > "$out"
    echo "warning: $(basename "$out" .json) failed with exit $rc (137 = killed, usually out of memory)" >&2
  fi
}
TUNED=(env LD_PRELOAD="$TCMALLOC" OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx512)
DEFAULT=(env -u OPENBLAS_CORETYPE -u ATEN_CPU_CAPABILITY RMKIT_NO_CPU_ENV=1)

for shape in $SHAPES; do
  B=$(pairs_for "$shape"); S=$(steps_for "$shape")
  for run in $(seq 1 "$RUNS"); do
    run_json "$TMP/rm_train_${shape}_$run.json" "${TUNED[@]}" "$BUILD/bench/bench_train" --shape "$shape" --pairs-per-step "$B" \
      --steps "$S" --threads "$THREADS" --seed "$run" --shared-prefix --plan-out "$TMP/train_$shape.json"
    with_default=0; [[ " $DEFAULT_SHAPES " == *" $shape "* ]] && with_default=1
    if [ $with_default = 1 ]; then
      run_json "$TMP/ref_default_train_${shape}_$run.json" "${DEFAULT[@]}" $PY "$REF" "$TMP/train_$shape.json" --threads "$THREADS"
    fi
    run_json "$TMP/ref_tuned_train_${shape}_$run.json" "${TUNED[@]}" $PY "$REF" "$TMP/train_$shape.json" --threads "$THREADS"
    run_json "$TMP/rm_score_${shape}_$run.json" "${TUNED[@]}" "$BUILD/bench/bench_score" --shape "$shape" --pairs $((B * S * 2)) \
      --batch-pairs "$B" --threads "$THREADS" --seed "$run" --plan-out "$TMP/score_$shape.json"
    run_json "$TMP/ref_tuned_score_${shape}_$run.json" "${TUNED[@]}" $PY "$REF" "$TMP/score_$shape.json" --threads "$THREADS" --mode score
    if [ $with_default = 1 ]; then
      run_json "$TMP/ref_default_score_${shape}_$run.json" "${DEFAULT[@]}" $PY "$REF" "$TMP/score_$shape.json" --threads "$THREADS" --mode score
    fi
    echo "shape $shape run $run/$RUNS done" >&2
  done
done

$PY - "$TMP" "$SHAPES" "$RUNS" <<'PYEOF'
import json, statistics, sys
tmp, shapes, runs = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
def load(kind, shape):  # one row per run; None where that run failed or was not run
    rows = []
    for r in range(1, runs + 1):
        try: rows.append(json.load(open(f"{tmp}/{kind}_{shape}_{r}.json")))
        except FileNotFoundError: rows.append({"failed": "not run"})
    return [None if "failed" in r else r for r in rows]
def med(rows, key):
    v = [r[key] for r in rows if r is not None]
    return statistics.median(v) if v else float("nan")
def ratios(a, b, key):  # median over the runs where both sides finished
    v = [x[key] / y[key] for x, y in zip(a, b) if x is not None and y is not None]
    return statistics.median(v) if v else float("nan")
def js(x): return None if x != x else x  # NaN -> null
out = []
print(f"{'shape':6} {'metric':24} {'rmkit':>10} {'ref tuned':>10} {'ref default':>11} {'ratio/tuned':>11} {'ratio/default':>13}")
for s in shapes:
    rt, rd, rtu = load("rm_train", s), load("ref_default_train", s), load("ref_tuned_train", s)
    st, sd, stu = load("rm_score", s), load("ref_default_score", s), load("ref_tuned_score", s)
    rows = [("train pairs/s", rt, rtu, rd, "pairs_per_s"), ("train tokens/s", rt, rtu, rd, "tokens_per_s"),
            ("train peak RSS MB", rt, rtu, rd, "peak_rss_mb"), ("score pairs/s", st, stu, sd, "pairs_per_s")]
    for name, a, t, d, k in rows:
        print(f"{s:6} {name:24} {med(a,k):10.2f} {med(t,k):10.2f} {med(d,k):11.2f} {ratios(a,t,k):11.2f} {ratios(a,d,k):13.2f}")
    fails = {k: sum(r is None for r in v) for k, v in  # (not run: DEFAULT_SHAPES)
             [("rmkit train", rt), ("ref default train", rd), ("ref tuned train", rtu),
              ("rmkit score", st), ("ref default score", sd), ("ref tuned score", stu)] if any(r is None for r in v)}
    if fails: print(f"{s:6} failed or not run (excluded from medians): {fails}")
    print(f"{s:6} {'MFU (vs in-run mm peak)':24} {med(rt,'mfu'):10.3f}   executed-FLOP MFU {med(rt,'mfu_executed'):.3f}, "
          f"physical-peak fraction {med(rt,'fraction_of_physical_fma_peak'):.3f}, padding rmkit {med(rt,'padding_fraction'):.3f}")
    out.append({"shape": s,
                "train_pairs_per_s_ratio": js(ratios(rt, rtu, "pairs_per_s")),
                "score_pairs_per_s_ratio": js(ratios(st, stu, "pairs_per_s")),
                "mfu": js(med(rt, "mfu")),
                "mfu_executed": js(med(rt, "mfu_executed")),
                "peak_rss_ratio": js(ratios(rt, rtu, "peak_rss_mb")),
                "train_pairs_per_s_ratio_vs_default": js(ratios(rt, rd, "pairs_per_s")),
                "score_pairs_per_s_ratio_vs_default": js(ratios(st, sd, "pairs_per_s")),
                "peak_rss_ratio_vs_default": js(ratios(rt, rd, "peak_rss_mb"))})
print(json.dumps(out[0] if len(out) == 1 else out))
PYEOF
