#!/bin/bash
# p99 at 80% of capacity under Poisson and constant arrivals, interleaved (issue 18 diagnosis).
# TAG=name SARGS="extra focus serve flags" ARRS="poisson constant" arrivals.sh -> arr_TAG/
cd /work/main
B=build-dev; D=$B/serve-bench; KEY=$(cat $D/twin.key); OUT=/work/runs/q21/arr_${TAG:-default}; mkdir -p $OUT
PORT=18471
for M in cnn_se vit; do
  $B/focus serve --model $M=$D/$M/model_best.safetensors --port $PORT --keys $D/keys.json $SARGS > $OUT/serve_$M.log 2>&1 &
  SP=$!
  for i in $(seq 50); do curl -sf http://127.0.0.1:$PORT/v2/health/ready >/dev/null && break; sleep 0.2; done
  LOAD="$B/serve_load --port $PORT --path /v2/models/$M/infer --header X-API-Key:$KEY --body-file $D/bodies.jsonl --timeout 10"
  $LOAD --rate 0 --connections 64 --duration 3 --warmup 1 > /dev/null   # warm-up
  $LOAD --rate 0 --connections 64 --duration 8 --warmup 1 > $OUT/${M}_cap.json
  CAP=$(python3 -c "import json; print(json.load(open('$OUT/${M}_cap.json'))['ok_per_s'])")
  echo "$M capacity $CAP"
  for r in 1 2 3; do
    $LOAD --rate 20 --connections 4 --duration 6 --warmup 1 --seed $r > $OUT/${M}_idle_$r.json
    for a in ${ARRS:-poisson constant}; do
      R=$(python3 -c "print(0.8*float('$CAP'))")
      $LOAD --rate $R --connections 256 --duration 6 --warmup 1 --arrivals $a --seed $r > $OUT/${M}_80_${a}_$r.json
    done
  done
  kill $SP; wait $SP
done
echo DONE
