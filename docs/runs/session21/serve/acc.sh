#!/bin/bash
# 80% of capacity with the access log on: where a slow request's time goes (issue 18 diagnosis).
cd /work/main
B=build-dev; D=$B/serve-bench; KEY=$(cat $D/twin.key); OUT=/work/runs/q21/acc; mkdir -p $OUT; rm -f $OUT/*
PORT=18473
for M in cnn_se vit; do
  $B/focus serve --model $M=$D/$M/model_best.safetensors --port $PORT --keys $D/keys.json --access-log $OUT/access_$M.jsonl > $OUT/serve_$M.log 2>&1 &
  SP=$!
  for i in $(seq 50); do curl -sf http://127.0.0.1:$PORT/v2/health/ready >/dev/null && break; sleep 0.2; done
  LOAD="$B/serve_load --port $PORT --path /v2/models/$M/infer --header X-API-Key:$KEY --body-file $D/bodies.jsonl --timeout 10"
  $LOAD --rate 0 --connections 64 --duration 3 --warmup 1 > /dev/null
  $LOAD --rate 0 --connections 64 --duration 8 --warmup 1 > $OUT/${M}_cap.json
  CAP=$(python3 -c "import json; print(json.load(open('$OUT/${M}_cap.json'))['ok_per_s'])")
  echo "$M capacity $CAP"
  for r in 1 2 3; do
    date +%s.%N > $OUT/${M}_start_$r
    $LOAD --rate $(python3 -c "print(0.8*float('$CAP'))") --connections 256 --duration 6 --warmup 1 --seed $r > $OUT/${M}_80_$r.json
    date +%s.%N > $OUT/${M}_end_$r
  done
  kill $SP; wait $SP
done
echo DONE
