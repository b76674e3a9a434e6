import json,sys,os
d=sys.argv[1]; arrs=sys.argv[2].split(",")
for m in ["cnn_se","vit"]:
    cap=json.load(open(f"{d}/{m}_cap.json"))["ok_per_s"]
    for r in [1,2,3]:
        idle=json.load(open(f"{d}/{m}_idle_{r}.json"))
        row=[f"{m} cap {cap:.0f} r{r} idle p50 {idle['latency_ms_ok']['p50']:.2f}"]
        for a in arrs:
            f=f"{d}/{m}_80_{a}_{r}.json"
            if not os.path.exists(f): continue
            j=json.load(open(f))
            row.append(f"{a}: p50 {j['latency_ms_ok']['p50']:.2f} p99 {j['latency_ms_ok']['p99']:.2f} ratio {j['latency_ms_ok']['p99']/idle['latency_ms_ok']['p50']:.1f} st {j['by_status']}")
        print(" | ".join(row))
