#!/bin/bash
# Session-8 measurements (run alone on the machine).
set -x
cd /work/main
D=docs/runs/amd-session8
/usr/bin/python3 bench/compare_seq2seq.py --build build --rounds 3 --max-tokens 1000 \
  --model-config '{"d_model":192,"d_ff":768}' --data-parallel --out $D/seq2seq_dp.md --json-out $D/seq2seq_dp.json > $D/seq2seq_dp.log 2>&1
/usr/bin/python3 bench/compare_seq2seq.py --build build --rounds 3 --max-tokens 1000 \
  --model-config '{"d_model":192,"d_ff":768}' --out $D/seq2seq_op.md --json-out $D/seq2seq_op.json > $D/seq2seq_op.log 2>&1
for mb in 0 256; do FOCUS_HOST_CACHE_MB=$mb build/seq2seq_bench --threads 2 --data-parallel --max-tokens 1000 --steps 30 --warmup 3 --model-config '{"d_model":192,"d_ff":768}' --json > $D/seq2seq_cache$mb.json 2>&1; done
/usr/bin/python3 bench/compare_decode.py --build build --rounds 3 --reps 3 --uncached-reps 0 --weights f32,bf16 --out $D/decode.md --json-out $D/decode.json > $D/decode.log 2>&1
build/focus bench gemm --trans nt --sizes 16x1024x256,16x256x1024,16x8000x256,1x1024x256,16x768x256 --json > $D/gemm_nt_rowdots.json
for k in panels-f32 panels-bf16; do build/focus bench gemm --trans nt --kernel $k --sizes 16x1024x256,16x256x1024,16x8000x256,1x1024x256,16x768x256 --json > $D/gemm_$k.json; done
