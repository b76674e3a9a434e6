#!/bin/bash
# The server's own histograms (batch size, queue, compute, request) over one open-loop run.
cd /work/main; B=build-dev; D=$B/serve-bench; KEY=$(cat $D/twin.key); PORT=18483; M=${M:-cnn_se}
${FOCUS:-$B/focus} serve --model $M=$D/$M/model_best.safetensors --port $PORT --keys $D/keys.json $SARGS > /tmp/h_serve.log 2>&1 &
SP=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:$PORT/v2/health/ready >/dev/null && break; sleep 0.2; done
LOAD="$B/serve_load --port $PORT --path /v2/models/$M/infer --header X-API-Key:$KEY --body-file $D/bodies.jsonl --timeout 10"
$LOAD --rate 0 --connections 64 --duration 3 --warmup 1 > /dev/null
if [ -n "$PIN" ]; then  # the two busiest threads (the executors) to a core each
  i=0; for t in $(for t in /proc/$SP/task/*; do echo "$(awk '{print $14+$15}' $t/stat) $(basename $t)"; done | sort -rn | head -2 | awk '{print $2}'); do taskset -p -c $i $t > /dev/null; i=$((i+1)); done
fi
curl -s -H "X-API-Key: $KEY" http://127.0.0.1:$PORT/metrics > /tmp/h_a.txt
$LOAD --rate ${RATE:-2200} --connections ${CONNS:-256} --duration 6 --warmup 0 > /tmp/h_load.json
curl -s -H "X-API-Key: $KEY" http://127.0.0.1:$PORT/metrics > /tmp/h_b.txt
kill $SP; wait $SP
python3 - <<'PY'
import json,re
j=json.load(open('/tmp/h_load.json')); print(f"ok/s {j['ok_per_s']:.0f} p50 {j['latency_ms_ok']['p50']:.2f} p99 {j['latency_ms_ok']['p99']:.2f}")
def load(f):
    d={}
    for l in open(f):
        m=re.match(r'(focus_(batch_size|queue_seconds|compute_seconds|request_seconds)_bucket)\{.*le="([^"]+)"\} (\S+)',l)
        if m: d[(m.group(2),m.group(3))]=d.get((m.group(2),m.group(3)),0)+float(m.group(4))
    return d
a,b=load('/tmp/h_a.txt'),load('/tmp/h_b.txt')
for h in ['batch_size','queue_seconds','compute_seconds','request_seconds']:
    ks=[k for k in b if k[0]==h]; ks.sort(key=lambda k: float('inf') if k[1]=='+Inf' else float(k[1]))
    tot=b[(h,'+Inf')]-a.get((h,'+Inf'),0)
    print(h, ' '.join(f"<={k[1]}:{(b[k]-a.get(k,0))/tot:.3f}" for k in ks if k[1]!='+Inf'))
PY
