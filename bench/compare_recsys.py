#!/usr/bin/python3
"""`make bench-recsys`: focus's sasrec next to its PyTorch 1.13 twin (bench/recsys_torch.py) and
the baselines, on the synthetic interactions (src/focus/data/synthetic_interactions.hpp).

1. Quality: `focus train --task recsys --interactions synthetic` for --epochs (default 50): the
   table of HR@10 / NDCG@10 on the test fold for sasrec, first-order Markov, popularity and the
   generator's oracle (its expected best), full ranking and, apart, against 100 sampled negatives.
2. Equal metrics: focus and the twin trained the same --twin-epochs (default 10) on the same
   interactions.csv with the same hyper-parameters; their test HR@10 / NDCG@10 side by side.
3. Speed: --rounds interleaved rounds (focus, then the twin) of 2 training epochs each, same model
   size, same batch, 2 threads; the second epoch's training targets/s (a target = one position
   whose next item is predicted), the medians and their ratio.
Prints a markdown table and writes it with the raw numbers to --out (results.md, results.json).
Usage: /usr/bin/python3 bench/compare_recsys.py [--build build --out runs/recsys-bench --quick]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def focus_train(a, out, epochs, extra=()):
    cmd = [os.path.join(a.build, "focus"), "train", "--task", "recsys", "--interactions", "synthetic",
           "--epochs", str(epochs), "--batch", str(a.batch), "--lr", str(a.lr), "--threads", "2",
           "--out", out] + list(extra)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(out, "test_metrics.json")) as f:
        res = json.load(f)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        res["epochs_tps"] = [json.loads(l)["targets_per_s"] for l in f if l.strip()]
    return res


def torch_train(a, csv, epochs, no_eval):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "recsys_torch.py"), csv, "--epochs", str(epochs),
           "--batch", str(a.batch), "--lr", str(a.lr), "--threads", "2"] + (["--no-eval"] if no_eval else [])
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default="runs/recsys-bench")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--twin-epochs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--quick", action="store_true", help="20 epochs, a 3-epoch twin, 2 rounds")
    a = ap.parse_args()
    if a.quick:
        a.epochs, a.twin_epochs, a.rounds = 20, 3, 2
    os.makedirs(a.out, exist_ok=True)
    full = focus_train(a, os.path.join(a.out, "full"), a.epochs)
    csv = os.path.join(a.out, "full", "interactions.csv")
    twin_f = focus_train(a, os.path.join(a.out, "twin-focus"), a.twin_epochs)
    twin_t = torch_train(a, csv, a.twin_epochs, False)
    f_tps, t_tps = [], []
    for r in range(a.rounds):
        f_tps.append(focus_train(a, os.path.join(a.out, f"speed-{r}"), 2)["epochs_tps"][-1])
        t_tps.append(torch_train(a, csv, 2, True)["targets_per_s"][-1])
        print(f"round {r + 1}: focus {f_tps[-1]:.0f} targets/s, torch {t_tps[-1]:.0f} targets/s", file=sys.stderr)
    fm, tm = statistics.median(f_tps), statistics.median(t_tps)
    d = full["data"]
    lines = [f"Synthetic data: {d['users']} users, {d['items']} items, {d['interactions']} interactions; "
             f"test fold (each user's last item); sasrec {full['train']['parameters']} parameters, "
             f"{a.epochs} epochs, batch {a.batch}, lr {a.lr}.", "",
             "| ranker | HR@10 | NDCG@10 | sampled HR@10 | sampled NDCG@10 |", "|---|---|---|---|---|"]
    for name, key in [("sasrec (focus)", "model"), ("first-order Markov", "markov"), ("popularity", "popularity")]:
        m = full[key]
        lines.append(f"| {name} | {m['hr']:.4f} | {m['ndcg']:.4f} | {m['sampled_hr']:.4f} | {m['sampled_ndcg']:.4f} |")
    o = full["oracle"]
    lines.append(f"| oracle (expected best) | {o['hr']:.4f} | {o['ndcg']:.4f} | - | - |")
    lines += ["", f"sasrec HR@10 / oracle: {full['model']['hr'] / o['hr']:.3f}", "",
              f"Equal metrics, {a.twin_epochs} epochs each, same interactions and hyper-parameters:", "",
              "| implementation | HR@10 | NDCG@10 |", "|---|---|---|",
              f"| focus | {twin_f['model']['hr']:.4f} | {twin_f['model']['ndcg']:.4f} |",
              f"| PyTorch {twin_t.get('torch', '1.13')} twin | {twin_t['hr']:.4f} | {twin_t['ndcg']:.4f} |", "",
              f"Training speed, {a.rounds} interleaved rounds, 2 threads, batch {a.batch} (second epoch of each):", "",
              "| implementation | targets/s per round | median |", "|---|---|---|",
              f"| focus | {', '.join(f'{x:.0f}' for x in f_tps)} | {fm:.0f} |",
              f"| PyTorch twin | {', '.join(f'{x:.0f}' for x in t_tps)} | {tm:.0f} |", "",
              f"focus / PyTorch training targets/s: {fm / tm:.2f}x"]
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"full": full, "twin_focus": twin_f, "twin_torch": twin_t, "focus_tps": f_tps, "torch_tps": t_tps,
                   "ratio": fm / tm}, f, indent=2)


if __name__ == "__main__":
    main()
