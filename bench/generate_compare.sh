#!/usr/bin/env bash
# Generation engine figures in one run: bench_generate (16 streams vs 1, n = 30 shared prompt vs 30
# requests) and the PyTorch HF-style reference at batch 16 on the same shape, prompt and length.
#   bash bench/generate_compare.sh [BUILD_DIR]     (env: SHAPE=small STREAMS=16 PROMPT=64 TOKENS=128 THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
# both sides on the same kernels (this machine kind's shells may export OPENBLAS_CORETYPE=Haswell)
export OPENBLAS_CORETYPE=${BENCH_CORETYPE:-SkylakeX} ATEN_CPU_CAPABILITY=${BENCH_CAPABILITY:-avx512}
SHAPE=${SHAPE:-small}; STREAMS=${STREAMS:-16}; PROMPT=${PROMPT:-64}; TOKENS=${TOKENS:-128}; THREADS=${THREADS:-$(nproc)}
R=$("$BUILD/bench/bench_generate" --shape "$SHAPE" --streams "$STREAMS" --prompt-len "$PROMPT" --max-tokens "$TOKENS" --threads "$THREADS")
echo "$R"
# the reference runs on the same kernels as rmkit (rmkit sets these itself when unset)
TCMALLOC=$(ls /usr/lib/*/libtcmalloc_minimal.so.4 2>/dev/null | head -1 || true)
REF=$(LD_PRELOAD="$TCMALLOC" /usr/bin/python3 bench/reference/gen_reference.py \
  --shape "$SHAPE" --batch "$STREAMS" --prompt-len "$PROMPT" --max-tokens "$TOKENS" --threads "$THREADS")
echo "$REF"
python3 - "$R" "$REF" <<'PY'
import json, sys
r, ref = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"1 stream          {r['one_stream_tokens_per_s']:9.1f} tok/s")
print(f"{r['streams']} streams        {r['streams_tokens_per_s']:9.1f} tok/s = {r['streams_ratio']:.2f}x one stream (target >= 5)")
print(f"  decode-step linears on torch's BLAS instead (--no-decode-gemm): {r['streams_tokens_per_s_blas']:.1f} tok/s -> oneDNN path {r['decode_gemm_speedup']:.2f}x; "
      f"weight copies {r['decode_gemm_copy_bytes'] / 2**20:.1f} MiB (parameters {r['model_parameter_bytes'] / 2**20:.1f} MiB)")
print(f"  TTFT p50/p99 {r['ttft_p50_ms']:.1f}/{r['ttft_p99_ms']:.1f} ms, ITL p50/p99 {r['itl_p50_ms']:.1f}/{r['itl_p99_ms']:.1f} ms")
print(f"n={r['share_n']} shared prompt ({r['share_prompt_len']} tok) {r['shared_seconds']:.2f} s vs separate {r['separate_seconds']:.2f} s = {r['sharing_speedup']:.2f}x (target >= 2); identical samples {r['shared_equals_separate']}/{r['share_n']}")
print(f"PyTorch HF-style batch {ref['batch']}: {ref['tokens_per_s']:.1f} tok/s -> rmkit {r['streams_tokens_per_s'] / ref['tokens_per_s']:.2f}x (target >= 1.5)")
PY
