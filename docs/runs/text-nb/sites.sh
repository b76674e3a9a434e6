#!/bin/bash
# Cross-site (train on two sites, test on the third): NB-weighted n-grams, refit + 5 seeds, depth 0 and 1.
cd /work/wt-text
while pgrep -f "runs/sweep4.sh" > /dev/null; do sleep 3; done
FLAGS="--epochs 30 --patience 6 --batch 32 --lr 3e-3 --weight-decay 0.5 --label-smoothing 0.1 --token-dropout 0.1 --src-tokenizer bpe --bpe-merges 1500 --threads 1"
D0='{"dim": 16, "depth": 0, "heads": 2, "dropout": 0.3, "ngram_buckets": 200000, "ngram_order": 2, "ngram_scale": 10, "ngram_nb": 1.0}'
D1='{"dim": 32, "depth": 1, "heads": 2, "dropout": 0.3, "ngram_buckets": 200000, "ngram_order": 2, "ngram_scale": 10, "ngram_nb": 1.0}'
build/focus cv --data sentiment --cross-site $FLAGS --model-config "$D0" --refit --seeds 5 --out runs/nb-sites-d0q10e5 --folds-out runs/nb-sites-d0q10e5/folds.tsv > runs/nb-sites-d0q10e5.log 2>&1
build/focus cv --data sentiment --cross-site $FLAGS --model-config "$D1" --refit --seeds 5 --out runs/nb-sites-d1q10e5 > runs/nb-sites-d1q10e5.log 2>&1
/usr/bin/python3 bench/text_baselines.py runs/nb-sites-d0q10e5/folds.tsv --focus d0=runs/nb-sites-d0q10e5/cv.json --focus d1=runs/nb-sites-d1q10e5/cv.json > runs/baselines_sites.txt 2>&1
