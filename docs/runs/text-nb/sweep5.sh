#!/bin/bash
# Sentiment, depth 0, NB alpha 1 scale 10, SGD momentum 0.9 with LR-strength L2: C = 1 on the
# effective weights (scale x table) is a per-sample decay of scale^2 / n ~ 0.04 on the table.
cd /work/wt-text
MC='{"dim": 16, "depth": 0, "heads": 2, "dropout": 0.3, "ngram_buckets": 200000, "ngram_order": 2, "ngram_scale": 10, "ngram_nb": 1.0}'
COMMON="--src-tokenizer bpe --bpe-merges 1500 --threads 1 --label-smoothing 0.1 --token-dropout 0.1 --epochs 60 --patience 15 --batch 32 --optimizer sgd --momentum 0.9"
run() { name=$1; shift; build/focus cv --data sentiment --folds 10 $COMMON "$@" --model-config "$MC" --out runs/sw-$name > runs/sw-$name.log 2>&1; }
run sgd-wd01 --lr 0.1 --weight-decay 0.01
run sgd-wd04 --lr 0.1 --weight-decay 0.04
run sgd-wd1 --lr 0.1 --weight-decay 0.1
