#!/bin/bash
# Sentiment, depth 0, NB alpha 1: SGD with momentum (updates proportional to the gradient, as
# logistic regression's solvers; Adam moves a rare n-gram's weight as fast as a common one's).
cd /work/wt-text
COMMON="--src-tokenizer bpe --bpe-merges 1500 --threads 1 --label-smoothing 0.1 --token-dropout 0.1 --epochs 40 --patience 8 --batch 32 --optimizer sgd --momentum 0.9"
mc() { echo "{\"dim\": 16, \"depth\": 0, \"heads\": 2, \"dropout\": 0.3, \"ngram_buckets\": 200000, \"ngram_order\": 2, \"ngram_scale\": $1, \"ngram_nb\": 1.0}"; }
run() { name=$1; shift; build/focus cv --data sentiment --folds 10 $COMMON "$@" --out runs/sw-$name > runs/sw-$name.log 2>&1; }
run sgd-a --lr 0.1 --weight-decay 1e-4 --model-config "$(mc 10)"
run sgd-b --lr 0.03 --weight-decay 1e-4 --model-config "$(mc 10)"
run sgd-c --lr 0.1 --weight-decay 1e-3 --model-config "$(mc 10)"
run sgd-d --lr 0.1 --weight-decay 1e-4 --model-config "$(mc 3)"
