import json,sys,os,glob,re
d=sys.argv[1]
cap=json.load(open(f"{d}/cap.json")); idle=json.load(open(f"{d}/idle.json"))
ticks={l.split()[0]+("_"+l.split()[1][1:] if l.startswith("f") else ""):int(l.split()[-1]) for l in open(f"{d}/cpu.txt")}
tot=cap['ok_per_s']*9
print(f"{d}: cap {cap['ok_per_s']:.0f} req/s, server {ticks['cap']*10/tot*1000:.0f} us/req (incl warmup) ; idle p50 {idle['latency_ms_ok']['p50']:.2f} p99 {idle['latency_ms_ok']['p99']:.2f}")
for f in sorted(glob.glob(f"{d}/f*_*.json")):
    j=json.load(open(f)); k=os.path.basename(f)[:-5]
    n=sum(j['by_status'].values()) if j['by_status'] else 1
    t=ticks.get(k,0)*10/(j['ok_per_s']*7)*1000 if j['ok_per_s'] else 0
    print(f"  {k}: ok/s {j['ok_per_s']:.0f} p50 {j['latency_ms_ok']['p50']:.2f} p99 {j['latency_ms_ok']['p99']:.2f} ratio {j['latency_ms_ok']['p99']/idle['latency_ms_ok']['p50']:.1f} server {t:.0f} us/req st {j['by_status']}")
