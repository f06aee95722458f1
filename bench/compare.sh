#!/usr/bin/env bash
# Compares embedpipe with its peers on this machine, in one command:
#   * `embedpipe bench` on the minilm-l6-shape model (made by shared/tools/genmodel)
#     over shared/peers/ort/inputs.public.jsonl;
#   * shared/peers/ort/bench.sh (ONNX Runtime, float32) on the same model and inputs;
#   * shared/peers/gemm/peak.sh (OpenBLAS sgemm) on the encoder's GEMM shapes.
# All three run with the same thread count and batch size, one after the other.
# The first run also installs the peers (npm, apt) and builds their model.
# Progress goes to stderr; stdout gets the three JSON results, the per-shape GEMM
# ratios, and as its last line exactly
#   ratio_vs_ort=R1 gemm_vs_openblas=R2
# R1 = embedpipe encoder tokens/s ÷ ORT tokens/s (both real tokens over the median
# pass); R2 = geometric mean over the three encoder shapes of embedpipe Dense GFLOP/s
# ÷ OpenBLAS median GFLOP/s.
#
# --int8 compares the int8 modes instead: embedpipe --compute int8 against
# bench.sh --int8 (ONNX Runtime's dynamic int8); gemm_vs_openblas then relates
# the int8 Dense to OpenBLAS sgemm (2·m·n·k operations either way).
#
# usage: bench/compare.sh [--threads N] [--batch N] [--reps N] [--int8]
# env:   EMBEDPIPE_SHARED (default ../shared beside the repository),
#        EMBEDPIPE_BENCH_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/embedpipe-bench)
set -euo pipefail

THREADS=2
BATCH=32
REPS=3
INT8=0
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --batch | --batch-size) BATCH="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --int8) INT8=1; shift ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for v in "$THREADS" "$BATCH" "$REPS"; do
  case "$v" in '' | *[!0-9]* | 0) echo "compare.sh: --threads, --batch and --reps take positive integers" >&2; exit 2 ;; esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
SHARED="${EMBEDPIPE_SHARED:-$ROOT/../shared}"
[ -d "$SHARED/peers" ] || { echo "compare.sh: $SHARED/peers not found (set EMBEDPIPE_SHARED)" >&2; exit 1; }
SHARED="$(cd "$SHARED" && pwd -P)"
CACHE="${EMBEDPIPE_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/embedpipe-bench}"
MODEL="$CACHE/minilm-l6-shape"
INPUT="$SHARED/peers/ort/inputs.public.jsonl"
PY=python3
log() { echo "compare.sh: $*" >&2; }

mkdir -p "$CACHE"
if [ ! -f "$MODEL/model.safetensors" ]; then
  log "generating minilm-l6-shape into $MODEL"
  (cd "$SHARED/tools/genmodel" && go run . -spec minilm-l6-shape -out "$MODEL") >&2
fi
log "building embedpipe"
(cd "$ROOT" && go build -o "$CACHE/embedpipe" ./cmd/embedpipe) >&2

# Order: ORT, then embedpipe (its encoder passes, then its kernel probe), then
# OpenBLAS, so that each pair being compared runs back to back. On a machine
# shared with other work the figures still move with its load, which is
# printed before and after.
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true; }
echo "load_before=$(loadavg | tr ' ' ',')"

ORT_MODE=()
OUR_MODE=(--compute float32)
if [ "$INT8" = 1 ]; then
  ORT_MODE=(--int8) # bench.sh wants it first
  OUR_MODE=(--compute int8)
fi

log "ONNX Runtime peer ${ORT_MODE[*]} (threads $THREADS, batch $BATCH, reps $REPS)"
ORT="$("$SHARED/peers/ort/bench.sh" "${ORT_MODE[@]}" --threads "$THREADS" --batch "$BATCH" --reps "$REPS" | tail -n 1)"
echo "$ORT"

log "embedpipe bench ${OUR_MODE[*]} (threads $THREADS, batch $BATCH, reps $REPS)"
OURS="$("$CACHE/embedpipe" bench "${OUR_MODE[@]}" --model "$MODEL" --input "$INPUT" --threads "$THREADS" --batch-size "$BATCH" --reps "$REPS" --json)"
echo "$OURS"

log "OpenBLAS sgemm peer (threads $THREADS)"
GEMM="$("$SHARED/peers/gemm/peak.sh" "$THREADS" 4096 384 384 4096 384 1536 4096 1536 384 | grep -v '"corename"' || true)"
if [ -z "$GEMM" ]; then # peak.sh without shape arguments prints its default list
  GEMM="$("$SHARED/peers/gemm/peak.sh" "$THREADS" | grep '"encoder_' || true)"
fi
echo "$GEMM"
echo "load_after=$(loadavg | tr ' ' ',')"

OURS="$OURS" ORT="$ORT" GEMM="$GEMM" "$PY" - <<'PYEOF'
import json, math, os, sys
ours = json.loads(os.environ["OURS"])
ort = json.loads(os.environ["ORT"])
blas = {}
for line in os.environ["GEMM"].splitlines():
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if "m" in r and "gflops_median" in r:
        blas["%dx%dx%d" % (r["m"], r["k"], r["n"])] = r["gflops_median"]
r1 = ours["tokens_per_s"] / ort["tokens_per_s"]
print("encoder (%s): embedpipe %.0f tokens/s, onnxruntime %.0f tokens/s (%d threads, batch %d): %.2fx"
      % (ours.get("compute", "float32"), ours["tokens_per_s"], ort["tokens_per_s"], ours["threads"], ours["batch"], r1))
ratios = []
for k in ours.get("kernels", []):
    b = blas.get(k["shape"])
    if b:
        ratios.append(k["gflop_per_s"] / b)
        print("gemm %s: embedpipe %.1f GFLOP/s, OpenBLAS %.1f GFLOP/s: %.2fx" % (k["shape"], k["gflop_per_s"], b, ratios[-1]))
if not ratios:
    sys.exit("compare.sh: no GEMM shape in common between embedpipe bench and peak.sh")
r2 = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
print("ratio_vs_ort=%.3f gemm_vs_openblas=%.3f" % (r1, r2))
# One JSON line for the record: the ratios, the kernel family embedpipe's
# run used (avx2 / gonum; avx512 and vnni do not exist yet) and the CPU
# flags that chose it, as embedpipe bench --json reports them.
print(json.dumps({
    "compute": ours.get("compute", "float32"),
    "threads": ours["threads"], "batch": ours["batch"],
    "embedpipe_tokens_per_s": ours["tokens_per_s"], "ort_tokens_per_s": ort["tokens_per_s"],
    "ratio_vs_ort": round(r1, 3), "gemm_vs_openblas": round(r2, 3),
    "kernel_family": ours.get("kernel_family", "unknown"),
    "cpu_flags": ours.get("cpu_flags", []),
    "bf16_path": ours.get("dispatch", {}).get("bf16_reason", ""),
}))
PYEOF
