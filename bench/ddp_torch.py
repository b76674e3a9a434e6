#!/usr/bin/python3
"""PyTorch DistributedDataParallel twin of `mpirun -np 2 focus train` (bench/ddp_compare.py runs
the two in turns): 2 processes on this machine, gloo backend over loopback TCP, 1 intra-op thread
each (as focus's FOCUS_NUM_THREADS=1 ranks), the same model and global batch.

  vit: bench/torch_models.py's twin of focus's default vit (139,018 parameters), global batch
       --batch (128: 64 per process) of random 28x28 images (the data does not change the time),
       cross-entropy, clip_grad_norm_(1.0), AdamW (lr 1e-3, weight decay 0.05) as focus train.
  g2p: bench/seq2seq_torch.py's twin of focus's g2p transformer, on the batches and initial
       weights `build/seq2seq_bench --dump-batches FILE` wrote (CMUdict-shaped synthetic words,
       --max-tokens 4096 padded tokens a global batch); process r takes rows [r B / 2,
       (r + 1) B / 2) of each global batch, trimmed to its own longest source and target as focus
       does; loss = summed cross-entropy / the global batch's target tokens x 2 (DDP averages
       the 2 gradients: the global token mean), clip 1.0, AdamW.
DDP: default buckets (25 MiB), gradients all-reduced during the backward pass (overlapped).
Timing: --warmup steps, a barrier, --steps timed steps, a barrier; throughput = global images (or
source + target tokens) over the timed steps / their wall time, measured by process 0.
Verify: every loss finite; the processes' parameters equal after training (DDP keeps them in
sync: checked by all-reducing a checksum).
Prints one JSON object (process 0).
Usage: /usr/bin/python3 bench/ddp_torch.py --model vit|g2p [--batches FILE] [--steps 30]
"""
import argparse
import json
import math
import os
import queue as queue_mod
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def worker(rank, args, port, queue):
    import torch_common as tc  # environment before torch
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP

    tc.setup_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(1)
    steps = []  # per step: a closure computing the loss of this rank's share
    if args.model == "vit":
        import torch_models as tm
        model = tm.make_model("vit")
        g = torch.Generator().manual_seed(100 + rank)
        half = args.batch // 2
        x = torch.randn(half, 1, 28, 28, generator=g)  # (B/2, 1, 28, 28)
        y = torch.randint(0, 10, (half,), generator=g)  # (B/2)
        units_per_step = [args.batch] * (args.warmup + args.steps)
        ddp = DDP(model)

        def loss_of(i):
            return F.cross_entropy(ddp(x), y)
        steps = [loss_of] * (args.warmup + args.steps)
    else:
        import seq2seq_torch as st
        tensors, meta = tc.read_safetensors(args.batches, "ddp_torch")
        cfg = json.loads(meta["config"])
        n = args.warmup + args.steps
        if n > int(meta["batches"]):
            raise SystemExit(f"ddp_torch: {args.batches} holds {meta['batches']} batches, need {n}")
        model = st.Seq2Seq(cfg)
        st.load_focus_params(model, {k[6:]: v for k, v in tensors.items() if k.startswith("param.")})
        ddp = DDP(model)
        V = cfg["tgt_vocab"]
        units_per_step = []
        for i in range(n):
            src, src_len, tgt_in, tgt_out = (tensors[f"batch.{i}.{k}"]
                                             for k in ("src", "src_len", "tgt_in", "tgt_out"))
            units_per_step.append(int(src_len.sum()) + int((tgt_out != 0).sum()))
            total_tgt = int((tgt_out != 0).sum())
            B = src.shape[0]
            lo, hi = rank * B // 2, (rank + 1) * B // 2
            if hi == lo:  # a one-row batch: this process has no rows (zero gradients, still reduced)
                steps.append(lambda i: sum((p * 0).sum() for p in model.parameters()))
                continue
            s, sl, ti, to = src[lo:hi], src_len[lo:hi], tgt_in[lo:hi], tgt_out[lo:hi]
            S = int(sl.max())
            T = int((to != 0).any(0).nonzero().max()) + 1
            part = (s[:, :S].contiguous(), sl.contiguous(), ti[:, :T].contiguous(),
                    to[:, :T].contiguous(), total_tgt)

            def loss_of(i, part=part):
                s, sl, ti, to, total = part
                logits = ddp(s, sl, ti)
                return F.cross_entropy(logits.reshape(-1, V), to.reshape(-1), ignore_index=0,
                                       reduction="sum") * (2.0 / total)
            steps.append(loss_of)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    params = list(model.parameters())
    losses = []

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = steps[i](i)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())

    for i in range(args.warmup):
        step(i)
    dist.barrier()
    t0 = time.perf_counter()
    for i in range(args.warmup, args.warmup + args.steps):
        step(i)
    dist.barrier()
    seconds = time.perf_counter() - t0
    if not all(math.isfinite(v) for v in losses):
        raise SystemExit(f"ddp_torch: non-finite loss on rank {rank}: {losses}")
    with torch.no_grad():
        check = torch.tensor([float(sum(p.double().sum() for p in params)), 1.0], dtype=torch.float64)
        gathered = [torch.zeros(2, dtype=torch.float64) for _ in range(2)]
        dist.all_gather(gathered, check)
    if gathered[0][0].item() != gathered[1][0].item():
        raise SystemExit(f"ddp_torch: the replicas differ: {gathered}")
    if rank == 0:
        units = sum(units_per_step[args.warmup:])
        queue.put({"framework": "torch-ddp", "model": args.model, "processes": 2,
                   "threads_per_process": 1, "backend": "gloo", **tc.environment(1),
                   "params": sum(p.numel() for p in params), "steps": args.steps,
                   "warmup": args.warmup, "seconds": seconds,
                   "unit": "images" if args.model == "vit" else "tokens",
                   "per_s": units / seconds, "ms_per_step": seconds / args.steps * 1e3,
                   "loss_last": losses[-1]})
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["vit", "g2p"], required=True)
    ap.add_argument("--batch", type=int, default=128, help="vit: global batch")
    ap.add_argument("--batches", help="g2p: seq2seq_bench --dump-batches file")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--port", type=int, default=0, help="the rendezvous port; 0: a free one")
    ap.add_argument("--teardown-timeout", type=float, default=60,
                    help="seconds the processes get to exit after the result")
    args = ap.parse_args()
    if args.model == "g2p" and not args.batches:
        ap.error("--model g2p needs --batches FILE")
    if args.port == 0:  # a free port: a process left over from an earlier run holds none of ours
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.port = s.getsockname()[1]
    import torch.multiprocessing as mp
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = mp.start_processes(worker, args=(args, args.port, queue), nprocs=2,
                               start_method="spawn", join=False)
    result = None
    while result is None:
        try:
            result = queue.get(timeout=5)
        except queue_mod.Empty:
            if procs.join(timeout=0.1):  # raises, with the traceback, when a process fails
                raise SystemExit("ddp_torch: the processes ended without a result")
    # The result is complete (timed, replicas compared); gloo's teardown has been seen to hang
    # (one process spinning): give the processes a bound, then end them and say so.
    deadline = time.monotonic() + args.teardown_timeout
    while not procs.join(timeout=1):
        if time.monotonic() > deadline:
            for p in procs.processes:
                p.kill()
            result["teardown_hung"] = True
            print("ddp_torch: the processes did not exit within "
                  f"{args.teardown_timeout:.0f} s of the result; killed", file=sys.stderr)
            break
    print(json.dumps(result))

if __name__ == "__main__":
    main()
