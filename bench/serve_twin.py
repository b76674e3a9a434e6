#!/usr/bin/python3
"""serve_twin: the Python twin of `focus serve` for the serving benchmark (bench/compare_serve.py),
built as a team would build it: FastAPI + uvicorn + PyTorch (Debian's python3-fastapi 0.92,
python3-uvicorn 0.17, python3-torch 1.13), serving the SAME focus model files (cnn_se, vit).

API (the subset of focus serve the benchmark uses, same paths, JSON and status codes):
  GET  /v2/health/live, /v2/health/ready        -> {"live": true} / {"ready": true}, no key
  GET  /v2/models/{m}                            -> V2 model metadata (version = first 12 hex of
                                                    the file's SHA-256, as focus)
  POST /v2/models/{m}/infer                      KServe V2 JSON: inputs[0] "pixels" (N, 1, 28, 28)
                                                    FP32 in [0, 1], flat or nested -> outputs[0]
                                                    "probabilities" (N, 10)
  POST /v1/models/{m}/classify[?top=K]           a PNG body (image/png) or {"png": base64} ->
                                                    {"model", "predictions": [{"top": [...]}]}
  Keys: `Authorization: Bearer KEY` or `X-API-Key: KEY` compared (hmac.compare_digest) with the one
  secret in --key-file; 401 without it. Errors are {"error": "..."} (400/401/404).

What a team would reasonably do, and what this twin does:
  - one uvicorn worker (uvicorn.run in this process) with uvloop + httptools (Debian's
    python3-uvloop and python3-httptools: what `pip install uvicorn[standard]` brings), no access
    log. More workers would each hold a copy of torch and the models and fight over the same
    2 cores; the comparison's fairness is in the thread count below instead.
  - sync `def` endpoints: FastAPI runs them in its threadpool, so the event loop keeps accepting
    and parsing while torch computes; the PNG endpoint is async (it reads the raw body) and hands
    the model call to the same threadpool (run_in_threadpool).
  - pydantic models for the V2 request structure (FastAPI's idiom); the `data` array is turned
    into a tensor by numpy (validating 784 floats one by one in pydantic would be slower still).
  - model.eval(), torch.inference_mode() around every call, the model file's mean / std and
    calibration temperature applied
    as focus does, softmax in torch.
  - no dynamic batching and no queue limit: each request runs alone as it arrives (batching is
    what focus brings; a team without it would not write one for a first version), and uvicorn
    accepts whatever arrives (its default; --limit-concurrency N makes it answer 503 above N).
  - torch.set_num_threads(--threads, default 1) with FastAPI's threadpool at its default 40
    threads (--pool): several requests compute at once, one intra-op thread each, so the 2 cores
    are used with no oversubscription. With 2 threads per call (docs/PEERS.md's "same thread
    count") each pool thread that runs torch gets its own OpenMP team: ~80 threads on 2 cores,
    and on this machine the server collapsed under 64 connections (7 answers in 4 s, cores kept
    busy); `--threads 2 --pool 1` (one request computing at a time, on both cores) is the sane
    way to give each call 2 threads (compare_serve.py --twin-threads / --twin-pool).
    OpenBLAS core and OMP_WAIT_POLICY as in bench/torch_common.py.
Only the model families and options the benchmark uses are rebuilt: cnn_se (any channels), vit
with the patch stem, class-token pooling and full multi-head attention (kv_heads 0).
Usage: /usr/bin/python3 bench/serve_twin.py --model cnn_se=FILE [--model vit=FILE] --port P
       --key-file KEY [--host 127.0.0.1] [--threads 1] [--pool 40]
It prints `serve_twin: listening on http://HOST:PORT` on stderr when ready.
"""
import argparse
import base64
import hashlib
import hmac
import io
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_common  # noqa: E402  (sets OpenBLAS / OpenMP before torch loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_models  # noqa: E402
from typing import List, Optional  # noqa: E402

import uvicorn  # noqa: E402
from fastapi import Depends, FastAPI, Header, HTTPException, Request  # noqa: E402
from fastapi.concurrency import run_in_threadpool  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from pydantic import BaseModel  # noqa: E402


def build_model(kind, cfg):
    """The torch twin (bench/torch_models.py) of a focus model with config cfg (the file's JSON)."""
    if kind == "cnn_se":
        return torch_models.CnnSe(in_channels=cfg.get("in_channels", 1),
                                  num_classes=cfg.get("num_classes", 10),
                                  channels=tuple(cfg.get("channels", (32, 64, 128))),
                                  se_reduction=cfg.get("se_reduction", 4))
    if kind == "vit":
        heads = cfg.get("heads", 4)
        if cfg.get("stem", "patch") != "patch" or cfg.get("pool", "cls") != "cls" or \
                cfg.get("kv_heads", 0) not in (0, heads):
            raise SystemExit(f"serve_twin: vit config {cfg} is not rebuilt here (patch stem, cls "
                             "pooling and kv_heads 0 only)")
        return torch_models.Vit(image_size=cfg.get("image_size", 28),
                                in_channels=cfg.get("in_channels", 1),
                                num_classes=cfg.get("num_classes", 10), patch=cfg.get("patch", 4),
                                dim=cfg.get("dim", 64), depth=cfg.get("depth", 4), heads=heads,
                                mlp_ratio=cfg.get("mlp_ratio", 2.0))
    raise SystemExit(f"serve_twin: model family {kind!r} is not rebuilt here (cnn_se, vit)")


class Served:
    """One model: the torch module in eval mode, its normalisation, classes and version."""

    def __init__(self, name, path):
        tensors, meta = torch_common.read_safetensors(path, "serve_twin")
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        if not meta.get("format", "").startswith("focus-image-classifier/"):
            raise SystemExit(f"serve_twin: {path} is not a focus image classifier")
        cfg = json.loads(meta.get("model_config", "{}"))
        norm = json.loads(meta["normalization"])
        self.name, self.kind, self.version = name, meta["model"], sha[:12]
        self.model = build_model(self.kind, cfg)
        self.model.load_state_dict(torch_common.focus_state_dict(self.model, tensors, path, "serve_twin"))
        self.model.eval()
        self.mean, self.std = float(norm["mean"]), float(norm["std"])
        # The calibration temperature focus fits on the validation split and applies to every
        # answer (softmax(logits / T); files without one: 1).
        self.temperature = float(meta.get("temperature", "1"))
        self.channels = cfg.get("in_channels", 1)
        self.size = cfg.get("image_size", 28)
        self.classes = json.loads(meta.get("class_names", "[]"))

    def probabilities(self, pixels):
        """pixels float32 (N, C, S, S) in [0, 1] -> probabilities float32 (N, K)."""
        with torch.inference_mode():
            x = (torch.from_numpy(pixels) - self.mean) / self.std  # (N, C, S, S)
            return torch.softmax(self.model(x) / self.temperature, 1).numpy()  # (N, K)

    def metadata(self):
        shape = [-1, self.channels, self.size, self.size]
        return {"name": self.name, "versions": [self.version], "platform": "pytorch",
                "inputs": [{"name": "pixels", "datatype": "FP32", "shape": shape}],
                "outputs": [{"name": "probabilities", "datatype": "FP32",
                             "shape": [-1, len(self.classes) or 10]}]}


class V2Tensor(BaseModel):
    name: str
    shape: List[int]
    datatype: str
    data: list


class V2Request(BaseModel):
    inputs: List[V2Tensor]


def make_app(models, key):
    app = FastAPI(title="serve_twin")

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        return JSONResponse({"error": f"bad request: {exc.errors()}"}, status_code=400)

    def require_key(authorization: Optional[str] = Header(None),
                    x_api_key: Optional[str] = Header(None)):
        given = x_api_key
        if given is None and authorization and authorization.startswith("Bearer "):
            given = authorization[len("Bearer "):]
        if given is None or not hmac.compare_digest(given.encode(), key.encode()):
            raise HTTPException(401, "missing or wrong API key")

    def model_of(m):
        if m not in models:
            raise HTTPException(404, f"unknown model '{m}'")
        return models[m]

    @app.get("/v2/health/live")
    def live():
        return {"live": True}

    @app.get("/v2/health/ready")
    def ready():
        return {"ready": True}

    @app.get("/v2/models/{m}", dependencies=[Depends(require_key)])
    def metadata(m: str):
        return model_of(m).metadata()

    @app.post("/v2/models/{m}/infer", dependencies=[Depends(require_key)])
    def infer(m: str, req: V2Request):
        s = model_of(m)
        if len(req.inputs) != 1 or req.inputs[0].datatype != "FP32":
            raise HTTPException(400, "expected one FP32 input 'pixels'")
        t = req.inputs[0]
        want = [s.channels, s.size, s.size]
        if len(t.shape) != 4 or t.shape[1:] != want or t.shape[0] < 1:
            raise HTTPException(400, f"pixels shape {t.shape} must be [N, {want[0]}, {want[1]}, "
                                     f"{want[2]}]")
        try:
            pixels = np.asarray(t.data, dtype=np.float32).reshape(t.shape)  # (N, C, S, S)
        except (ValueError, TypeError) as e:
            raise HTTPException(400, f"pixels data does not match shape {t.shape}: {e}")
        probs = s.probabilities(pixels)  # (N, K)
        return {"model_name": m, "model_version": s.version,
                "outputs": [{"name": "probabilities", "shape": list(probs.shape),
                             "datatype": "FP32", "data": probs.ravel().tolist()}]}

    @app.post("/v1/models/{m}/classify", dependencies=[Depends(require_key)])
    async def classify(m: str, request: Request, top: int = 3):
        s = model_of(m)
        body = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = base64.b64decode(json.loads(body)["png"], validate=True)
            except (ValueError, KeyError, TypeError) as e:
                raise HTTPException(400, f"expected {{\"png\": base64}}: {e}")
        return await run_in_threadpool(classify_png, s, m, body, max(1, top))

    return app


def classify_png(s, m, png, top):
    from PIL import Image, UnidentifiedImageError
    try:
        img = Image.open(io.BytesIO(png)).convert("L")
    except (UnidentifiedImageError, OSError) as e:
        raise HTTPException(400, f"not a PNG image: {e}")
    if img.size != (s.size, s.size):
        img = img.resize((s.size, s.size), Image.BOX)  # area averaging, as focus
    pixels = (np.asarray(img, dtype=np.float32) / 255.0).reshape(1, 1, s.size, s.size)
    p = s.probabilities(pixels)[0]  # (K)
    order = np.argsort(-p, kind="stable")[:top]
    names = s.classes or [str(i) for i in range(len(p))]
    return {"model": m, "predictions": [{"top": [{"index": int(i), "name": names[i],
                                                  "prob": float(p[i])} for i in order]}]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="NAME=FILE (repeat)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key-file", required=True, help="file holding the one API key")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--pool", type=int, default=40,
                    help="threads of FastAPI's threadpool (anyio's default: 40)")
    ap.add_argument("--limit-concurrency", type=int, default=None,
                    help="uvicorn's limit (503 above it); default none, as uvicorn's")
    args = ap.parse_args()
    torch_common.setup_threads(args.threads)
    with open(args.key_file) as f:
        key = f.read().strip()
    models = {}
    for spec in args.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"serve_twin: --model wants NAME=FILE, got {spec!r}")
        models[name] = Served(name, path)
    app = make_app(models, key)

    @app.on_event("startup")
    async def announce():
        import anyio.to_thread
        anyio.to_thread.current_default_thread_limiter().total_tokens = args.pool
        print(f"serve_twin: listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)

    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level="warning",
                access_log=False, limit_concurrency=args.limit_concurrency)


if __name__ == "__main__":
    main()
