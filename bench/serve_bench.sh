#!/usr/bin/env bash
# rmkit serve: throughput ratios and a load test, measured in one run.
#   bash bench/serve_bench.sh [BUILD_DIR]        (env: PAIRS=512 CLIENTS=32 LOAD_CLIENTS=16 DURATION=60 RM=DIR
#                                                  DATA=prefs/rmb_pairwise.jsonl.gz MAX_LENGTH=512)
# 1. a stories260K reward model (trained for 60 steps on RMB unless RM=DIR is given);
# 2. offline `rmkit score` on PAIRS pairs of DATA (under the assets; default RMB): pairs/s = (PAIRS - 16) / (t(PAIRS) - t(16)), which
#    removes start-up (model load, file read) from the offline figure;
# 3. the same pairs through `rmkit serve` from CLIENTS concurrent clients, 4 pairs per /v1/score
#    request, with cross-request batching and with --no-cross-request-batching (one request per
#    batch, the one-request-at-a-time server behaviour);
# 4. a load test: LOAD_CLIENTS clients for DURATION s over mixed routes.
# Prints one JSON line per measurement and a summary table. SERVE_ARGS adds server flags;
# SINGLE_ARGS replaces the one-request-at-a-time server's flags (default --no-cross-request-batching;
# the issue's own simulation is SINGLE_ARGS="--max-batch-tokens 1": one prompt group per forward).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
export OPENBLAS_CORETYPE=${BENCH_CORETYPE:-SkylakeX} ATEN_CPU_CAPABILITY=${BENCH_CAPABILITY:-avx512}
ASSETS=${RMKIT_ASSETS:-$(cd .. && pwd)/shared/assets}
PAIRS=${PAIRS:-512}; CLIENTS=${CLIENTS:-32}; LOAD_CLIENTS=${LOAD_CLIENTS:-16}; DURATION=${DURATION:-60}
DATA=${DATA:-prefs/rmb_pairwise.jsonl.gz}; MAX_LENGTH=${MAX_LENGTH:-512}
RMKIT=$BUILD/rmkit; CLIENT=$BUILD/bench/bench_serve
WORK=$(mktemp -d); SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
now() { date +%s.%N; }

MODEL=$ASSETS/models/stories260K/stories260K.bin; TOK=$ASSETS/models/stories260K/tok512.model
python3 - "$ASSETS/$DATA" "$WORK/rmb.jsonl" "$PAIRS" <<'PY'
import gzip, json, sys
ok = []
with gzip.open(sys.argv[1], "rt") as f:
    for line in f:
        r = json.loads(line)
        if r["chosen"] and r["rejected"] and r["chosen"] != r["rejected"]:
            ok.append(r)
        if len(ok) == int(sys.argv[3]):
            break
open(sys.argv[2], "w").write("".join(json.dumps(r) + "\n" for r in ok))
open(sys.argv[2] + ".16", "w").write("".join(json.dumps(r) + "\n" for r in ok[:16]))
PY
if [ -z "${RM:-}" ]; then
  RM=$WORK/rm
  "$RMKIT" train --model "$MODEL" --tokenizer "$TOK" --data "$ASSETS/prefs/rmb_pairwise.jsonl.gz" --output "$RM" \
    --max-steps 60 --batch-size 16 --val-fraction 0.02 --max-length 512 >"$WORK/train.log" 2>&1
fi

t0=$(now); "$RMKIT" score --model "$RM" --data "$WORK/rmb.jsonl.16" --output "$WORK/s16.jsonl" --max-length "$MAX_LENGTH" 2>/dev/null; t1=$(now)
"$RMKIT" score --model "$RM" --data "$WORK/rmb.jsonl" --output "$WORK/sall.jsonl" --max-length "$MAX_LENGTH" 2>/dev/null; t2=$(now)
OFFLINE=$(python3 -c "print(($PAIRS - 16) / (($t2 - $t1) - ($t1 - $t0)))")
echo "{\"measure\": \"offline\", \"pairs_per_s\": $OFFLINE}"

serve() {  # serve EXTRA_ARGS...: starts the server, waits for /health
  rm -f "$WORK/port"
  "$RMKIT" serve --model "rm=$RM" --port 0 --port-file "$WORK/port" --max-length "$MAX_LENGTH" --max-queue 100000 ${SERVE_ARGS:-} "$@" \
    >"$WORK/serve.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 600); do [ -s "$WORK/port" ] && curl -sf "http://127.0.0.1:$(cat "$WORK/port")/health" >/dev/null && return; sleep 0.1; done
  echo "server did not start:"; cat "$WORK/serve.log"; exit 1
}
stop() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""; }

serve
"$CLIENT" --url "127.0.0.1:$(cat "$WORK/port")" --data "$WORK/rmb.jsonl" --pairs "$PAIRS" --clients "$CLIENTS" \
  --pairs-per-request 4 --mode throughput | tee "$WORK/batched.json"
stop
serve ${SINGLE_ARGS:---no-cross-request-batching}
"$CLIENT" --url "127.0.0.1:$(cat "$WORK/port")" --data "$WORK/rmb.jsonl" --pairs "$PAIRS" --clients "$CLIENTS" \
  --pairs-per-request 4 --mode throughput | tee "$WORK/single.json"
stop
serve
"$CLIENT" --url "127.0.0.1:$(cat "$WORK/port")" --data "$WORK/rmb.jsonl" --pairs "$PAIRS" --clients "$LOAD_CLIENTS" \
  --pairs-per-request 4 --mode load --routes mixed --duration "$DURATION" | tee "$WORK/load.json"
stop

python3 - "$WORK" "$OFFLINE" "${SINGLE_ARGS:---no-cross-request-batching}" <<'PY'
import json, sys
w, offline, single_args = sys.argv[1], float(sys.argv[2]), sys.argv[3]
b, s, l = (json.load(open(f"{w}/{n}.json")) for n in ("batched", "single", "load"))
print(f"offline rmkit score           {offline:8.2f} pairs/s")
print(f"serve, {b['clients']} clients x 4 pairs  {b['pairs_per_s']:8.2f} pairs/s  = {b['pairs_per_s']/offline:.2f}x offline (target >= 0.9)")
print(f"serve, one at a time ({single_args})  {s['pairs_per_s']:8.2f} pairs/s  -> batching gains {b['pairs_per_s']/s['pairs_per_s']:.2f}x (target >= 3)")
print(f"load: {l['clients']} clients x {l['seconds']:.0f} s mixed routes: {l['requests_per_s']:.1f} req/s, "
      f"p50 {l['p50_ms']:.1f} ms, p95 {l['p95_ms']:.1f} ms, p99 {l['p99_ms']:.1f} ms, errors {l['errors']}, "
      f"server RSS {l['server_rss_mb_start']:.0f} -> {l['server_rss_mb_end']:.0f} MB")
PY
