#!/bin/bash
# The validation-chosen recipe (SGD, L2 0.01, depth 0, NB alpha 1, scale 10), refit + 5 seeds:
# pooled 10 folds (run first, by hand, the same command) and cross-site.
cd /work/wt-text
FLAGS="--src-tokenizer bpe --bpe-merges 1500 --threads 1 --label-smoothing 0.1 --token-dropout 0.1 --epochs 60 --patience 15 --batch 32 --optimizer sgd --momentum 0.9 --lr 0.1 --weight-decay 0.01"
MC='{"dim": 16, "depth": 0, "heads": 2, "dropout": 0.3, "ngram_buckets": 200000, "ngram_order": 2, "ngram_scale": 10, "ngram_nb": 1.0}'
# build/focus cv --data sentiment --folds 10 $FLAGS --model-config "$MC" --refit --seeds 5 --out runs/nb-sgd-d0e5
build/focus cv --data sentiment --cross-site $FLAGS --model-config "$MC" --refit --seeds 5 --out runs/nb-sites-sgd-d0e5 > runs/nb-sites-sgd-d0e5.log 2>&1
