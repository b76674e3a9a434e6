#!/usr/bin/env bash
# `make bench`: focus's benchmarks next to their PyTorch 1.13 twins (bench/compare.py), then the
# encoder-decoder Transformer's training (bench/compare_seq2seq.py, the g2p model), then the
# attention kernels next to PyTorch's textbook attention (bench/compare_attention.py), several
# interleaved rounds each; prints the markdown tables and keeps them with the raw JSON in BUILD_DIR
# (bench_results.*, bench_seq2seq.*, bench_attention.*). Inference against ONNX Runtime
# (bench/compare_ort.py -> bench_ort.*) runs too when onnxruntime-node is in BUILD_DIR/ort
# (`make bench-ort` installs it); bf16 mixed-precision training next to PyTorch f32 and autocast
# (compare.py / compare_seq2seq.py --precision bf16 -> bench_bf16.*, bench_seq2seq_bf16.*) where
# the CPU has AVX512-BF16 or AMX (`focus bench gemm --precision bf16` runs).
# Usage: bench/run_all.sh BUILD_DIR
# Environment: ROUNDS=3, ITERS=10, MAX_LOAD=0 (wait for a lower 1-minute load average before each
# round; 0: don't), MAX_OTHERS=0 (repeat a run during which other processes used more cores),
# ATTN_LENS=128,512,1024,2048 (attention lengths; the full sweep of docs/BENCHMARKS.md adds 4096
# and 8192 and takes about an hour: bench/compare_attention.py --len 128,512,1024,2048,4096,8192).
set -euo pipefail
build="${1:?usage: bench/run_all.sh BUILD_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "run_all: PyTorch is not importable by /usr/bin/python3 (apt-get install python3-torch)" >&2
  exit 1
fi
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
/usr/bin/python3 "$here/compare.py" --build "$build" --rounds "${ROUNDS:-3}" \
  --iters "${ITERS:-10}" --max-load "${MAX_LOAD:-0}" --max-others "${MAX_OTHERS:-0}" \
  --out "$build/bench_results.md" --json-out "$build/bench_results.json"
/usr/bin/python3 "$here/compare_seq2seq.py" --build "$build" --rounds "${ROUNDS:-3}" \
  --max-load "${MAX_LOAD:-0}" \
  --out "$build/bench_seq2seq.md" --json-out "$build/bench_seq2seq.json"
/usr/bin/python3 "$here/compare_explain.py" --build "$build" --rounds "${ROUNDS:-3}" \
  --out "$build/bench_explain.md" --json-out "$build/bench_explain.json"
if "$build/focus" bench gemm --precision bf16 --sizes 64 --reps 1 >/dev/null 2>&1; then
  /usr/bin/python3 "$here/compare.py" --build "$build" --precision bf16 --rounds "${ROUNDS:-3}" \
    --iters "${ITERS:-10}" --max-load "${MAX_LOAD:-0}" --max-others "${MAX_OTHERS:-0}" \
    --out "$build/bench_bf16.md" --json-out "$build/bench_bf16.json"
  /usr/bin/python3 "$here/compare_seq2seq.py" --build "$build" --precision bf16 --rounds "${ROUNDS:-3}" \
    --max-load "${MAX_LOAD:-0}" --out "$build/bench_seq2seq_bf16.md" --json-out "$build/bench_seq2seq_bf16.json"
else
  echo "run_all: this CPU has no bf16 units (AVX512-BF16 / AMX): bf16 training skipped" >&2
fi
if [ -d "$build/ort/node_modules/onnxruntime-node" ]; then
  /usr/bin/python3 "$here/compare_ort.py" --build "$build" --rounds "${ROUNDS:-3}" \
    --iters "${ITERS:-10}" --out "$build/bench_ort.md" --json-out "$build/bench_ort.json"
else
  echo "run_all: no onnxruntime-node in $build/ort: ONNX Runtime skipped (make bench-ort)" >&2
fi
exec /usr/bin/python3 "$here/compare_attention.py" --build "$build" --rounds "${ROUNDS:-3}" \
  --len "${ATTN_LENS:-128,512,1024,2048}" --max-load "${MAX_LOAD:-0}" --max-others "${MAX_OTHERS:-0}" \
  --out "$build/bench_attention.md" --json-out "$build/bench_attention.json"
