import json, datetime, statistics, sys
d = sys.argv[1]
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(p * len(v)))] if v else float('nan')
for m in ["cnn_se", "vit"]:
    rows = []
    for line in open(f"{d}/access_{m}.jsonl"):
        j = json.loads(line)
        if j.get("model") != m: continue
        t = datetime.datetime.strptime(j["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
        rows.append((t, j))
    for r in [1, 2, 3]:
        s = float(open(f"{d}/{m}_start_{r}").read()) + 1.0  # after the warm-up second
        e = float(open(f"{d}/{m}_end_{r}").read())
        w = [j for t, j in rows if s <= t <= e and j["status"] == 200]
        c = json.load(open(f"{d}/{m}_80_{r}.json"))
        tot = [j["total_ms"] for j in w]; q = [j["queue_ms"] for j in w]; cm = [j["compute_ms"] for j in w]; b = [j["batch"] for j in w]
        print(f"{m} r{r}: client p50 {c['latency_ms_ok']['p50']:.2f} p99 {c['latency_ms_ok']['p99']:.2f} | server total p50 {pct(tot,.5):.2f} p99 {pct(tot,.99):.2f}; queue p99 {pct(q,.99):.2f}; compute p50 {pct(cm,.5):.2f} p99 {pct(cm,.99):.2f}; batch p50 {pct(b,.5)} p99 {pct(b,.99)} max {max(b) if b else 0}; n {len(w)}")
