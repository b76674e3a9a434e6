#!/bin/bash
# Sentiment, depth 0, NB alpha 1: ngram_scale 3 and 30; depth 1 scale 10 (single seed, no refit).
cd /work/wt-text
FLAGS="--epochs 30 --patience 6 --batch 32 --lr 3e-3 --weight-decay 0.5 --label-smoothing 0.1 --token-dropout 0.1 --src-tokenizer bpe --bpe-merges 1500 --threads 1"
for s in 3 30; do
  build/focus cv --data sentiment --folds 10 $FLAGS --model-config "{\"dim\": 16, \"depth\": 0, \"heads\": 2, \"dropout\": 0.3, \"ngram_buckets\": 200000, \"ngram_order\": 2, \"ngram_scale\": $s, \"ngram_nb\": 1.0}" --out runs/nb-d0q$s > runs/nb-d0q$s.log 2>&1
done
build/focus cv --data sentiment --folds 10 $FLAGS --model-config '{"dim": 32, "depth": 1, "heads": 2, "dropout": 0.3, "ngram_buckets": 200000, "ngram_order": 2, "ngram_scale": 10, "ngram_nb": 1.0}' --out runs/nb-d1q10 > runs/nb-d1q10.log 2>&1
