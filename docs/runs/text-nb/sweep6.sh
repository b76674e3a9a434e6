#!/bin/bash
# Sentiment, depth 0, NB alpha 1 scale 10: Adam with coupled L2 (the decay in the gradient),
# single seed, no refit.
cd /work/wt-text
MC='{"dim": 16, "depth": 0, "heads": 2, "dropout": 0.3, "ngram_buckets": 200000, "ngram_order": 2, "ngram_scale": 10, "ngram_nb": 1.0}'
COMMON="--src-tokenizer bpe --bpe-merges 1500 --threads 1 --label-smoothing 0.1 --token-dropout 0.1 --epochs 60 --patience 15 --batch 32 --optimizer adam --lr 3e-3"
run() { name=$1; shift; build/focus cv --data sentiment --folds 10 $COMMON "$@" --model-config "$MC" --out runs/sw-$name > runs/sw-$name.log 2>&1; }
run adam-l2-001 --weight-decay 0.01
run adam-l2-003 --weight-decay 0.003
run adam-l2-03 --weight-decay 0.03
