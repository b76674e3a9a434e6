#!/bin/bash
# Closed-loop capacity (64 connections, 8 s) and the server's CPU per request, binaries interleaved.
cd /work/main; B=build-dev; D=$B/serve-bench; KEY=$(cat $D/twin.key); PORT=18477; M=${M:-cnn_se}
for r in ${ROUNDS:-1 2 3}; do for v in $VERSIONS; do
  /tmp/focus_$v serve --model $M=$D/$M/model_best.safetensors --port $PORT --keys $D/keys.json $SARGS > /tmp/cap_serve.log 2>&1 &
  SP=$!
  for i in $(seq 50); do curl -sf http://127.0.0.1:$PORT/v2/health/ready >/dev/null && break; sleep 0.2; done
  LOAD="$B/serve_load --port $PORT --path /v2/models/$M/infer --header X-API-Key:$KEY --body-file $D/bodies.jsonl --timeout 10"
  $LOAD --rate 0 --connections 64 --duration 3 --warmup 1 > /dev/null
  c0=$(awk '{print $14+$15}' /proc/$SP/stat); $LOAD --rate ${RATE:-0} --connections ${CONNS:-64} --duration 8 --warmup 0 > /tmp/cap.json; c1=$(awk '{print $14+$15}' /proc/$SP/stat)
  python3 -c "import json; j=json.load(open('/tmp/cap.json')); n=j['ok_per_s']*8; print(f'$M r$r $v ok/s {j[\"ok_per_s\"]:.0f} p50 {j[\"latency_ms_ok\"][\"p50\"]:.2f} p99 {j[\"latency_ms_ok\"][\"p99\"]:.2f} server {($c1-$c0)*1e4/n:.0f} us/req')"
  kill $SP; wait $SP
done; done
