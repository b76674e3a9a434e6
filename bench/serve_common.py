"""Helpers of the serving benchmark (bench/compare_serve.py): model files and keys, request bodies
from Fashion-MNIST, server processes (start, readiness, RSS and CPU from /proc, quiet waits), and
the two load tools (wrk + bench/serve_wrk.lua for saturation, build/serve_load for open-loop
latency), each run returning a dict with the server's CPU and peak RSS during the run.
Linux only (/proc). Standard library only, so /usr/bin/python3 runs it without torch.
"""
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

from compare import cpu_busy_s

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"
DATA = "/usr/share/datasets/fashion-mnist"


def log(msg):
    print(f"[serve-bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit(f"compare_serve: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return p.stdout


def ensure_models(focus, work, models, epochs, limit):
    """work/<m>/model_best.safetensors for each model, trained briefly when missing."""
    out = {}
    for m in models:
        path = os.path.join(work, m, "model_best.safetensors")
        if not os.path.exists(path):
            log(f"training {m}: {epochs} epoch(s) on {limit} Fashion-MNIST images")
            run([focus, "train", "--model", m.replace("_", "-"), "--epochs", str(epochs),
                 "--limit-train", str(limit), "--val-size", "500", "--threads", "2", "--seed", "1",
                 "--out", os.path.join(work, m)])
        out[m] = path
    return out


def make_key(focus, work):
    """A fresh key file with one key (roles infer, metrics); returns (keys.json, secret)."""
    keys = os.path.join(work, "keys.json")
    if os.path.exists(keys):
        os.remove(keys)
    out = run([focus, "keys", "create", "--file", keys, "--id", "bench", "--roles", "infer,metrics"])
    secret = [ln.strip() for ln in out.splitlines() if ln.strip()][-1].split()[-1]
    return keys, secret


def test_images(n):
    """The first n Fashion-MNIST test images as lists of 784 floats in [0, 1]."""
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        data = f.read()
    _, count, rows, cols = struct.unpack(">IIII", data[:16])
    px = rows * cols
    return [[b / 255.0 for b in data[16 + i * px:16 + (i + 1) * px]] for i in range(min(n, count))]


def v2_body(images):
    """V2 infer JSON (compact, one line) for a batch of images (N lists of 784)."""
    flat = ",".join(",".join("0" if v == 0 else f"{v:.6g}" for v in img) for img in images)
    return ('{"inputs":[{"name":"pixels","shape":[%d,1,28,28],"datatype":"FP32","data":[%s]}]}'
            % (len(images), flat))


def png_gray(img, size=28):
    """A grayscale PNG (bytes) of one image (list of size*size floats in [0, 1])."""
    import zlib
    raw = b"".join(b"\x00" + bytes(round(v * 255) for v in img[r * size:(r + 1) * size])
                   for r in range(size))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=10):
    """-> (status, parsed JSON or text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data.decode(errors="replace")


def proc_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Server:
    """A server process (focus serve or the twin) on a free loopback port, logging to a file."""

    def __init__(self, name, cmd_of_port, work, env=None):
        self.name, self.port = name, free_port()
        self.log_path = os.path.join(work, f"{name}.log")
        self.cmd = cmd_of_port(self.port)
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})), cwd=ROOT)
        self.wait_ready()
        self.rss_start = proc_rss_mib(self.proc.pid)

    def wait_ready(self, timeout=120):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"compare_serve: {self.name} exited ({self.proc.returncode}); see "
                                 f"{self.log_path}:\n{open(self.log_path).read()[-2000:]}")
            try:
                if request(self.port, "GET", "/v2/health/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"compare_serve: {self.name} not ready after {timeout} s ({self.log_path})")

    def alive(self):
        """The process runs and answers /v2/health/live within 2 s."""
        if self.proc.poll() is not None:
            return False
        try:
            return request(self.port, "GET", "/v2/health/live", timeout=2)[0] == 200
        except OSError:
            return False

    def rss(self):
        return proc_rss_mib(self.proc.pid)

    def cpu(self):
        return proc_cpu_s(self.proc.pid)

    def check_running(self):
        if self.proc.poll() is not None:
            raise SystemExit(f"compare_serve: {self.name} exited ({self.proc.returncode}) during the "
                             f"benchmark; its log {self.log_path} ends:\n"
                             f"{open(self.log_path).read()[-1500:]}")

    def wait_quiet(self, max_s=60, below=0.05):
        """Waits until the server used < `below` of a core over 0.3 s (its backlog is done)."""
        self.check_running()
        t0 = time.time()
        while time.time() - t0 < max_s:
            c0 = self.cpu()
            time.sleep(0.3)
            if (self.cpu() - c0) / 0.3 < below:
                return time.time() - t0
        log(f"{self.name} still busy after {max_s} s")
        return time.time() - t0

    def stop(self, timeout=30):
        """SIGTERM; -> exit status (None when it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        self.logf.close()
        return self.proc.returncode


class Watch:
    """Samples a server's RSS every 50 ms while a load runs; CPU of server and machine around it."""

    def __init__(self, server):
        self.server, self.peak, self._stop = server, 0.0, threading.Event()

    def __enter__(self):
        self.t0, self.cpu0, self.busy0 = time.time(), self.server.cpu(), cpu_busy_s()
        self.peak = self.server.rss()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, self.server.rss())
            except OSError:
                return

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()
        wall = time.time() - self.t0
        self.result = {"server_cpu_cores": (self.server.cpu() - self.cpu0) / wall,
                       "machine_busy_cores": (cpu_busy_s()[0] - self.busy0[0]) / wall,
                       "stolen_cores": (cpu_busy_s()[1] - self.busy0[1]) / wall,
                       "rss_peak_mib": self.peak, "rss_after_mib": self.server.rss(),
                       "load1": os.getloadavg()[0]}


def wrk(server, path, bodies, key, connections, seconds):
    """Saturation: wrk -t1 -cC -dS; -> requests/s answered 200 (non-2xx and errors excluded),
    wrk's closed-loop latency, and the Watch figures (client CPU from wrk's rusage)."""
    cmd = [shutil.which("wrk") or "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
           "--timeout", "10s", "-s", os.path.join(HERE, "serve_wrk.lua"),
           f"http://127.0.0.1:{server.port}{path}", "--", bodies, key]
    with Watch(server) as w:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, _, ru = os.wait4(p.pid, 0)
        out, err = p.stdout.read(), p.stderr.read()
    line = [ln for ln in out.splitlines() if ln.startswith("serve_wrk: ")]
    if not line:
        raise SystemExit(f"compare_serve: wrk gave no summary:\n{out}\n{err}")
    r = json.loads(line[0][len("serve_wrk: "):])
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    r["ok_per_s"] = max(0, r["requests"] - r["non2xx"]) / r["seconds"]
    r["errors"] = errors
    r["client_cpu_frac"] = (ru.ru_utime + ru.ru_stime) / r["seconds"]
    r.update(w.result)
    return r


def open_loop(load_bin, server, path, bodies, key, rate, connections, seconds, warmup, seed):
    """Open-loop run of build/serve_load at `rate` req/s; -> its JSON + Watch figures + alive."""
    cmd = [load_bin, "--port", str(server.port), "--path", path, "--header", f"X-API-Key: {key}",
           "--body-file", bodies, "--rate", f"{rate:.3f}", "--connections", str(connections),
           "--duration", str(seconds), "--warmup", str(warmup), "--timeout", "10",
           "--seed", str(seed)]
    with Watch(server) as w:
        p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"compare_serve: {' '.join(cmd)} failed:\n{p.stderr}")
    r = json.loads(p.stdout)
    r.update(w.result)
    r["alive_after"] = server.alive()
    return r
