#!/bin/bash
# Per-thread CPU and context switches of focus serve over one open-loop run at RATE.
cd /work/main; B=build-dev; D=$B/serve-bench; KEY=$(cat $D/twin.key); PORT=18475; M=${M:-cnn_se}
${FOCUS:-$B/focus} serve --model $M=$D/$M/model_best.safetensors --port $PORT --keys $D/keys.json $SARGS > /tmp/thr_serve.log 2>&1 &
SP=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:$PORT/v2/health/ready >/dev/null && break; sleep 0.2; done
LOAD="$B/serve_load --port $PORT --path /v2/models/$M/infer --header X-API-Key:$KEY --body-file $D/bodies.jsonl --timeout 10"
$LOAD --rate 0 --connections 64 --duration 3 --warmup 1 > /dev/null
snap() { for t in /proc/$SP/task/*; do echo "$(basename $t) $(cat $t/comm | tr ' ' _) $(awk '{print $14+$15}' $t/stat) $(grep -E '^(non)?voluntary' $t/status | awk '{printf "%s ", $2}')"; done; }
snap > /tmp/thr_a
$LOAD --rate ${RATE:-3500} --connections ${CONNS:-256} --duration 6 --warmup 1 > /tmp/thr_load.json
snap > /tmp/thr_b
kill $SP; wait $SP
python3 - <<'PY'
import json
a={l.split()[0]:l.split() for l in open('/tmp/thr_a')}; b={l.split()[0]:l.split() for l in open('/tmp/thr_b')}
j=json.load(open('/tmp/thr_load.json')); n=j['ok_per_s']*7
print(f"ok/s {j['ok_per_s']:.0f} p50 {j['latency_ms_ok']['p50']:.2f} p99 {j['latency_ms_ok']['p99']:.2f} client cpu {j['client_cpu_frac']:.2f}")
tot=[0,0,0]
for k,v in b.items():
    if k not in a: continue
    d=[int(v[2])-int(a[k][2]), int(v[3])-int(a[k][3]), int(v[4])-int(a[k][4])]
    if sum(d)==0: continue
    tot=[x+y for x,y in zip(tot,d)]
    print(f"  {k} {v[1]:16s} cpu {d[0]*10/n*1000:6.1f} us/req  vol {d[1]/n:5.2f}/req  invol {d[2]/n:5.2f}/req")
print(f"  total cpu {tot[0]*10/n*1000:.0f} us/req, switches vol {tot[1]/n:.2f} invol {tot[2]/n:.2f} per req")
PY
