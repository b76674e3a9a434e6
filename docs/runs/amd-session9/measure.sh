#!/bin/bash
# Session-9 measurements (run alone on the machine, after the g2p run).
# A/B: the session-8 binary (copied to /tmp/s8bin before this session's changes were built) and
# this session's, alternating, then the PyTorch comparisons.
set -x
cd /work/main
D=docs/runs/amd-session9
CFG='{"d_model":192,"d_ff":768}'
for r in 1 2 3; do
  for b in /tmp/s8bin build; do
    n=$([ $b = build ] && echo s9 || echo s8)
    $b/seq2seq_bench --threads 2 --data-parallel --max-tokens 1000 --steps 30 --warmup 3 \
      --model-config "$CFG" --json > $D/ab_${n}_$r.json 2>&1
  done
done
/usr/bin/python3 bench/compare_seq2seq.py --build build --rounds 3 --max-tokens 1000 \
  --model-config "$CFG" --data-parallel --out $D/seq2seq_dp.md --json-out $D/seq2seq_dp.json > $D/seq2seq_dp.log 2>&1
/usr/bin/python3 bench/compare_seq2seq.py --build build --rounds 3 --max-tokens 1000 \
  --model-config "$CFG" --out $D/seq2seq_op.md --json-out $D/seq2seq_op.json > $D/seq2seq_op.log 2>&1
