#!/bin/bash
# Sentiment, NB-weighted n-grams, refit + 5 seeds, depth 1 then depth 0; the pooled folds.
cd /work/wt-text
FLAGS="--epochs 30 --patience 6 --batch 32 --lr 3e-3 --weight-decay 0.5 --label-smoothing 0.1 --token-dropout 0.1 --src-tokenizer bpe --bpe-merges 1500 --threads 1"
D1='{"dim": 32, "depth": 1, "heads": 2, "dropout": 0.3, "ngram_buckets": 200000, "ngram_order": 2, "ngram_scale": 10, "ngram_nb": 1.0}'
D0='{"dim": 16, "depth": 0, "heads": 2, "dropout": 0.3, "ngram_buckets": 200000, "ngram_order": 2, "ngram_scale": 10, "ngram_nb": 1.0}'
/usr/bin/time -v build/focus cv --data sentiment --folds 10 $FLAGS --model-config "$D1" --refit --seeds 5 --out runs/nb-d1q10e5 --folds-out runs/nb-d1q10e5/folds.tsv > runs/nb-d1q10e5.log 2>&1
/usr/bin/time -v build/focus cv --data sentiment --folds 10 $FLAGS --model-config "$D0" --refit --seeds 5 --out runs/nb-d0q10e5 > runs/nb-d0q10e5.log 2>&1
