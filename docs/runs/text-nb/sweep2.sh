#!/bin/bash
# Sentiment, depth 0, NB alpha 1 scale 10, one knob at a time (single seed, no refit); chosen by
# the mean held-out validation accuracy. Waits for final.sh.
cd /work/wt-text
while pgrep -f "runs/final.sh" > /dev/null; do sleep 5; done
BASE="--epochs 30 --patience 6 --batch 32 --src-tokenizer bpe --bpe-merges 1500 --threads 1 --lr 3e-3"
mc() { echo "{\"dim\": 16, \"depth\": 0, \"heads\": 2, \"dropout\": 0.3, \"ngram_buckets\": 200000, \"ngram_order\": $1, \"ngram_scale\": 10, \"ngram_nb\": $2}"; }
run() { name=$1; shift; build/focus cv --data sentiment --folds 10 $BASE "$@" --out runs/sw-$name > runs/sw-$name.log 2>&1; }
run wd01 --weight-decay 0.1 --label-smoothing 0.1 --token-dropout 0.1 --model-config "$(mc 2 1.0)"
run ls0 --weight-decay 0.5 --label-smoothing 0 --token-dropout 0.1 --model-config "$(mc 2 1.0)"
run td0 --weight-decay 0.5 --label-smoothing 0.1 --token-dropout 0 --model-config "$(mc 2 1.0)"
run a025 --weight-decay 0.5 --label-smoothing 0.1 --token-dropout 0.1 --model-config "$(mc 2 0.25)"
run o3 --weight-decay 0.5 --label-smoothing 0.1 --token-dropout 0.1 --model-config "$(mc 3 1.0)"
