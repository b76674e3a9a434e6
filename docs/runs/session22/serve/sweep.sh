#!/bin/bash
# Open-loop p99 against rate (fractions of the closed-loop capacity), with the server's CPU per request.
# TAG=name SARGS="flags" M=cnn_se FRACS="0.5 0.6 0.7 0.8 0.9" sweep.sh
cd /work/main
B=build-dev; D=$B/serve-bench; KEY=$(cat $D/twin.key); OUT=/work/runs/s22/sw_${TAG:-x}_${M}; mkdir -p $OUT
PORT=18473
${FOCUS:-$B/focus} serve --model $M=$D/$M/model_best.safetensors --port $PORT --keys $D/keys.json $SARGS > $OUT/serve.log 2>&1 &
SP=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:$PORT/v2/health/ready >/dev/null && break; sleep 0.2; done
cpu() { awk '{print $14+$15}' /proc/$SP/stat; }
LOAD="$B/serve_load --port $PORT --path /v2/models/$M/infer --header X-API-Key:$KEY --body-file $D/bodies.jsonl --timeout 10"
$LOAD --rate 0 --connections 64 --duration 3 --warmup 1 > /dev/null
c0=$(cpu); $LOAD --rate 0 --connections 64 --duration 8 --warmup 1 > $OUT/cap.json; c1=$(cpu)
CAP=$(python3 -c "import json; print(json.load(open('$OUT/cap.json'))['ok_per_s'])")
echo "cap $CAP server_ticks $((c1-c0))" > $OUT/cpu.txt
$LOAD --rate 20 --connections 4 --duration 6 --warmup 1 > $OUT/idle.json
for r in ${ROUNDS:-1}; do for f in ${FRACS:-0.5 0.6 0.7 0.8 0.9}; do
  R=$(python3 -c "print($f*float('$CAP'))")
  c0=$(cpu); $LOAD --rate $R --connections 256 --duration 6 --warmup 1 --seed $r > $OUT/f${f}_$r.json; c1=$(cpu)
  echo "f$f r$r server_ticks $((c1-c0))" >> $OUT/cpu.txt
  sleep 1
done; done
curl -s -H "X-API-Key: $KEY" http://127.0.0.1:$PORT/metrics > $OUT/metrics.txt
kill $SP; wait $SP
