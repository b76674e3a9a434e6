#!/bin/bash
# End-to-end A/B of the GEMM kernel behind gemm(): FOCUS_GEMM=blas (OpenBLAS) against the default
# (oneDNN's sgemm where it wins, kernels/gemm.hpp), the same binaries, interleaved, 3 rounds,
# natively and with FOCUS_FORCE_ISA=avx2: g2p training tokens/s on 1 thread (seq2seq_bench), cnn_se
# and vit training images/s at batch 128 and vit inference at batch 1 and 256 (bench_models; the
# programs verify their results before timing). One line per run; docs/BENCHMARKS.md "GEMM".
# Usage: bench/gemm_ab.sh [BUILD_DIR]   (default build)
B=${1:-build}
num() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
for r in 1 2 3; do
  for isa in native avx2; do
    for g in blas auto; do
      X=FOCUS_GEMM=$g
      [ $isa = avx2 ] && X="$X FOCUS_FORCE_ISA=avx2"
      l=$(cut -d' ' -f1 /proc/loadavg)
      s=$(env $X FOCUS_NUM_THREADS=1 $B/seq2seq_bench --threads 1 --steps 8 --json 2>/dev/null |
          num "print(round(d['train']['tokens_per_s']))")
      c=$(env $X $B/bench_models --model cnn_se --batch 128 --iters 6 --infer-batch 256 --json 2>/dev/null |
          num "print(round(d['train']['images_per_s']))")
      v=$(env $X $B/bench_models --model vit --batch 128 --iters 6 --infer-batch 1,256 --json 2>/dev/null |
          num "print(round(d['train']['images_per_s']), *[round(x['images_per_s']) for x in d['infer']])")
      echo "$r isa=$isa gemm=$g load=$l g2p_train_1t=$s cnn_train_2t=$c vit_train_2t,infer_b1,b256=$v"
    done
  done
done
