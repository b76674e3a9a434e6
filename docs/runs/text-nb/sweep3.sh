#!/bin/bash
# Sentiment, depth 0, NB alpha 1 scale 10: optimiser knobs (single seed, no refit).
cd /work/wt-text
MC='{"dim": 16, "depth": 0, "heads": 2, "dropout": 0.3, "ngram_buckets": 200000, "ngram_order": 2, "ngram_scale": 10, "ngram_nb": 1.0}'
COMMON="--src-tokenizer bpe --bpe-merges 1500 --threads 1 --label-smoothing 0.1 --token-dropout 0.1"
run() { name=$1; shift; build/focus cv --data sentiment --folds 10 $COMMON "$@" --model-config "$MC" --out runs/sw-$name > runs/sw-$name.log 2>&1; }
run lr1e3 --epochs 60 --patience 10 --batch 32 --lr 1e-3 --weight-decay 0.5
run lr1e2 --epochs 30 --patience 6 --batch 32 --lr 1e-2 --weight-decay 0.5
run b128 --epochs 60 --patience 10 --batch 128 --lr 3e-3 --weight-decay 0.5
run wd0 --epochs 30 --patience 6 --batch 32 --lr 3e-3 --weight-decay 0
run wd2 --epochs 30 --patience 6 --batch 32 --lr 3e-3 --weight-decay 2
