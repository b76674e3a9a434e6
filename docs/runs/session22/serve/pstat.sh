#!/bin/bash
# perf stat (task clock, context switches) of focus serve over an open-loop run; binaries interleaved.
cd /work/main; B=build-dev; D=$B/serve-bench; KEY=$(cat $D/twin.key); PORT=18481; M=${M:-cnn_se}
for r in ${ROUNDS:-1 2 3}; do for v in $VERSIONS; do
/tmp/focus_$v serve --model $M=$D/$M/model_best.safetensors --port $PORT --keys $D/keys.json $SARGS > /tmp/ps_serve.log 2>&1 &
SP=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:$PORT/v2/health/ready >/dev/null && break; sleep 0.2; done
LOAD="$B/serve_load --port $PORT --path /v2/models/$M/infer --header X-API-Key:$KEY --body-file $D/bodies.jsonl --timeout 10"
$LOAD --rate 0 --connections 64 --duration 3 --warmup 1 > /dev/null
perf stat -x, -e task-clock,context-switches,cpu-migrations -p $SP -o /tmp/pstat.txt -- sleep 6 &
PP=$!
$LOAD --rate ${RATE:-3400} --connections ${CONNS:-256} --duration 6 --warmup 0 > /tmp/ps_load.json
wait $PP; kill $SP; wait $SP
python3 - $v $r <<'PY'
import json,sys
j=json.load(open('/tmp/ps_load.json')); n=sum(v for k,v in j['by_status'].items() if k!='unsent')
st={l.split(',')[2]:float(l.split(',')[0]) for l in open('/tmp/pstat.txt') if l.count(',')>3 and l[0].isdigit()}
print(f"{sys.argv[1]} r{sys.argv[2]}: ok/s {j['ok_per_s']:.0f} p50 {j['latency_ms_ok']['p50']:.2f} p99 {j['latency_ms_ok']['p99']:.2f}  cpu {st['task-clock']*1e3/n:.0f} us/req  switches {st['context-switches']/n:.2f}/req  migrations {st['cpu-migrations']/n:.2f}/req")
PY
done; done
