#!/usr/bin/python3
"""ort_export: a focus image-model file (cnn_se, vit) exported to ONNX for the ONNX Runtime twin
(bench/ort_infer.js, bench/compare_ort.py; issue 21).

The PyTorch twin of the file's architecture (bench/torch_models.py) is built and filled with the
file's own weights by bench/serve_twin.py's reader (every focus tensor must be used, shapes must
match), put in eval mode (batch norm uses its running statistics, dropout is the identity), and
exported with torch.onnx.export: input "pixels" (N, C, S, S) float32, output "logits" (N, K),
the batch axis dynamic, constants folded. The graph is the network alone: no input normalisation
and no softmax, exactly what bench_models times (focus's ImageClassifier::forward).
Opset 17 (default) is the newest Debian's torch 1.13 writes, with LayerNormalization as one op;
--opset 14 (docs/PEERS.md's) decomposes it, and ONNX Runtime 1.30 fuses it back itself, as it
does the GELU and attention patterns. torch.onnx.export needs no `onnx` Python package
(it is checked only if installed). Optionally (--check-input, --check-output) runs the twin on a
raw float32 batch and writes its logits raw, to verify the twin against focus and ORT.
Usage: /usr/bin/python3 bench/ort_export.py --weights FILE.safetensors --out MODEL.onnx
       [--opset 17] [--check-input IN.f32 --check-output OUT.f32]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_common  # noqa: E402  (sets OpenBLAS / OpenMP before torch loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from serve_twin import build_model  # noqa: E402



def load_twin(path):
    """-> (torch twin in eval mode with the file's weights, model family, config)."""
    tensors, meta = torch_common.read_safetensors(path, "ort_export")
    if not meta.get("format", "").startswith("focus-image-classifier/"):
        raise SystemExit(f"ort_export: {path} is not a focus image classifier")
    cfg = json.loads(meta.get("model_config", "{}"))
    model = build_model(meta["model"], cfg)
    model.load_state_dict(torch_common.focus_state_dict(model, tensors, path, "ort_export"))
    return model.eval(), meta["model"], cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True, help="focus model file (.safetensors)")
    ap.add_argument("--out", required=True, help="ONNX file to write")
    ap.add_argument("--opset", type=int, default=17, help="ONNX opset (torch 1.13: 7..17)")
    ap.add_argument("--check-input", help="raw float32 (N, C, S, S) batch to run the twin on")
    ap.add_argument("--check-output", help="where the twin's raw float32 (N, K) logits go")
    args = ap.parse_args()
    model, kind, cfg = load_twin(args.weights)
    c, s = cfg.get("in_channels", 1), cfg.get("image_size", 28)
    example = torch.zeros(2, c, s, s)  # (N, C, S, S); batch 2 so no axis is traced as 1
    # Traced with autograd on: under no_grad torch 1.13's nn.TransformerEncoderLayer takes its
    # fused fast path (aten::_transformer_encoder_layer_fwd), which has no ONNX export.
    torch.onnx.export(model, example, args.out, input_names=["pixels"], output_names=["logits"],
                      dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=args.opset, do_constant_folding=True,
                      training=torch.onnx.TrainingMode.EVAL)
    info = {"model": kind, "onnx": args.out, "opset": args.opset, "torch": torch.__version__,
            "bytes": os.path.getsize(args.out)}
    if args.check_input:
        x = np.fromfile(args.check_input, dtype="<f4").reshape(-1, c, s, s)  # (N, C, S, S)
        with torch.inference_mode():
            y = model(torch.from_numpy(x)).numpy().astype("<f4")  # (N, K)
        y.tofile(args.check_output)
        info["checked_batch"] = int(x.shape[0])
    print(json.dumps(info))


if __name__ == "__main__":
    main()
