#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/), deterministically, with the
standard library only: small valid safetensors files and PNGs of every colour type, bit depth,
interlacing and transparency. The files are checked in; rerun after changing this script:
    python3 fuzz/make_corpus.py fuzz/corpus
The serve decoders' seeds are request bodies: JSON, or "<content-type>\n<top>\n<body>" where the
target takes a content type (fuzz/serve_input.hpp)."""
import base64
import hashlib
import json
import os
import struct
import sys
import zlib


def safetensors(tensors, metadata=None, digest=True):
    """tensors: list of (name, dtype, shape, raw bytes), laid out in order."""
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    meta = dict(metadata or {})
    if digest:
        meta["focus.sha256"] = hashlib.sha256(data).hexdigest()
    if meta:
        header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width, height, bit_depth, color, rows_of_samples, interlace=False, extra=()):
    """rows_of_samples: height lists of width*channels integer samples."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]

    def pack_row(samples):
        if bit_depth == 16:
            return b"".join(struct.pack(">H", s) for s in samples)
        if bit_depth == 8:
            return bytes(samples)
        out, acc, nbits = bytearray(), 0, 0
        for s in samples:
            acc, nbits = (acc << bit_depth) | s, nbits + bit_depth
            if nbits == 8:
                out.append(acc)
                acc, nbits = 0, 0
        if nbits:
            out.append(acc << (8 - nbits))
        return bytes(out)

    def filtered(rows):  # filter type 0 (none) on every row
        return b"".join(b"\0" + pack_row(r) for r in rows)

    if not interlace:
        raw = filtered(rows_of_samples)
    else:  # Adam7: 7 passes over sub-grids (x0, y0, dx, dy)
        raw = b""
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                               (1, 0, 2, 2), (0, 1, 1, 2)]:
            rows = []
            for y in range(y0, height, dy):
                row = []
                for x in range(x0, width, dx):
                    row += rows_of_samples[y][x * channels:(x + 1) * channels]
                if row:
                    rows.append(row)
            raw += filtered(rows)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color, 0, 0, 1 if interlace else 0)
    body = png_chunk(b"IHDR", ihdr)
    for kind, data in extra:
        body += png_chunk(kind, data)
    body += png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def image(width, height, channels, maxval):
    return [[(x * 7 + y * 13 + c * 5) % (maxval + 1) for x in range(width) for c in range(channels)]
            for y in range(height)]


def main(root):
    st = os.path.join(root, "safetensors_fuzz")
    os.makedirs(st, exist_ok=True)
    files = {
        "f32_digest.safetensors": safetensors([("w", "F32", [2, 2], f32(1, -2, 0.5, 3))]),
        "every_dtype.safetensors": safetensors([
            ("a.f32", "F32", [3], f32(1, 2, 3)),
            ("b.f64", "F64", [], struct.pack("<d", -3.25)),
            ("c.i32", "I32", [0, 4], b""),
            ("d.i64", "I64", [2], struct.pack("<2q", -1, 1 << 40)),
            ("e.bf16", "BF16", [2, 1], struct.pack("<2H", 0x3F80, 0x7F80)),
            ("f.i8", "I8", [4], bytes([0x80, 0xFF, 0, 0x7F]))], {"format": "pt", "epoch": "3"}),
        "no_digest.safetensors": safetensors([("x", "F32", [1], f32(7))], {"note": ""}, digest=False),
        "empty.safetensors": safetensors([], digest=False),
        "model_like.safetensors": safetensors(
            [("head.bias", "F32", [2], f32(0, 1)), ("head.weight", "F32", [2, 3], f32(*range(6)))],
            {"format": "focus-image-classifier/1", "model": "cnn_se",
             "model_config": json.dumps({"channels": [4], "num_classes": 2}),
             "class_names": json.dumps(["a", "b"]), "normalization": json.dumps({"mean": 0.5, "std": 0.25})}),
    }
    for name, data in files.items():
        with open(os.path.join(st, name), "wb") as f:
            f.write(data)

    pg = os.path.join(root, "png_fuzz")
    os.makedirs(pg, exist_ok=True)
    W, H = 5, 4
    pngs = {
        "gray1.png": png(W, H, 1, 0, image(W, H, 1, 1)),
        "gray2.png": png(W, H, 2, 0, image(W, H, 1, 3)),
        "gray4.png": png(W, H, 4, 0, image(W, H, 1, 15)),
        "gray8.png": png(W, H, 8, 0, image(W, H, 1, 255)),
        "gray16.png": png(W, H, 16, 0, image(W, H, 1, 65535)),
        "gray8_trns.png": png(W, H, 8, 0, image(W, H, 1, 255), extra=[(b"tRNS", struct.pack(">H", 13))]),
        "gray_alpha8.png": png(W, H, 8, 4, image(W, H, 2, 255)),
        "gray_alpha16.png": png(W, H, 16, 4, image(W, H, 2, 65535)),
        "rgb8.png": png(W, H, 8, 2, image(W, H, 3, 255)),
        "rgb16_trns.png": png(W, H, 16, 2, image(W, H, 3, 65535), extra=[(b"tRNS", struct.pack(">3H", 7, 14, 21))]),
        "rgba8.png": png(W, H, 8, 6, image(W, H, 4, 255)),
        "palette1.png": png(W, H, 1, 3, image(W, H, 1, 1), extra=[(b"PLTE", bytes([0, 0, 0, 255, 255, 255]))]),
        "palette4_trns.png": png(W, H, 4, 3, image(W, H, 1, 3),
                                 extra=[(b"PLTE", bytes(range(12))), (b"tRNS", bytes([0, 128]))]),
        "palette8.png": png(W, H, 8, 3, image(W, H, 1, 2), extra=[(b"PLTE", bytes(range(9)))]),
        "interlaced_rgb8.png": png(9, 9, 8, 2, image(9, 9, 3, 255), interlace=True),
        "interlaced_gray2.png": png(3, 10, 2, 0, image(3, 10, 1, 3), interlace=True),
        "fashion28.png": png(28, 28, 8, 0, image(28, 28, 1, 255)),
    }
    for name, data in pngs.items():
        with open(os.path.join(pg, name), "wb") as f:
            f.write(data)

    tk = os.path.join(root, "tokenizer_fuzz")
    os.makedirs(tk, exist_ok=True)
    tokenizers = {
        "char.json": {"kind": "char", "symbols": ["a", "b", " ", "\u00e9", "\u20ac", "t"]},
        "word.json": {"kind": "word", "symbols": ["HH", "AH0", "L", "OW1", "W", "ER1", "D"]},
        "bpe.json": {"kind": "bpe", "end_of_word": " ",
                     "symbols": [" ", "d", "e", "h", "l", "o", "r", "w", "he", "ll", "llo", "llo "],
                     "merges": [["h", "e"], ["l", "l"], ["ll", "o"], ["llo", " "]]},
    }
    for name, value in tokenizers.items():
        with open(os.path.join(tk, name), "w") as f:
            json.dump(value, f)

    def write_all(target, items):
        d = os.path.join(root, target)
        os.makedirs(d, exist_ok=True)
        for name, data in items.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data if isinstance(data, bytes) else data.encode())

    small = pngs["gray8.png"]
    b64 = base64.b64encode(small).decode()
    b64_rgb = base64.b64encode(pngs["rgba8.png"]).decode()
    pixels = [round((i % 17) / 16, 4) for i in range(784)]
    write_all("v2_infer_fuzz", {
        "flat.json": json.dumps({"inputs": [{"name": "pixels", "shape": [1, 1, 2, 2], "datatype": "FP32",
                                             "data": [0, 0.25, 0.5, 1]}]}),
        "nested_id.json": json.dumps({"id": "r1", "inputs": [{"name": "pixels", "shape": [2, 1, 1, 2],
                                                              "datatype": "FP64", "data": [[[[0, 1]]], [[[0.5, 1e-3]]]]}]}),
        "two_inputs.json": json.dumps({"inputs": [
            {"name": "a", "shape": [3], "datatype": "INT32", "data": [1, 2, 3]},
            {"name": "b", "shape": [0, 4], "datatype": "INT64", "data": []}]}),
        "fashion28.json": json.dumps({"inputs": [{"name": "pixels", "shape": [1, 1, 28, 28],
                                                  "datatype": "FP32", "data": pixels}]}),
    })
    write_all("classify_fuzz", {
        "png_body": b"image/png\n\n" + small,
        "png_body_top": b"image/png\n3\n" + pngs["palette4_trns.png"],
        "json_png": "application/json; charset=utf-8\n\n" + json.dumps({"png": b64, "top": 2}),
        "json_pngs": json.dumps({"pngs": [b64, b64_rgb]}),
        "wrong_type": "text/plain\n\nhello",
    })
    write_all("translate_fuzz", {
        "one.json": json.dumps({"inputs": ["hello world"]}),
        "search.json": json.dumps({"inputs": ["a b", "c"], "beam": 5, "nbest": 3,
                                   "length_penalty": 0.6, "max_len": 20}),
        "unicode.json": json.dumps({"inputs": ["\u00e9t\u00e9 \u20ac"]}, ensure_ascii=False),
    })
    write_all("explain_fuzz", {
        "png_body": b"image/png\n\n" + small,
        "json_png": "application/json\n\n" + json.dumps({"png": b64, "method": "rollout", "layer": 0,
                                                           "head": 1, "target": 2, "maps": True}),
        "json_text": "application/json\n\n" + json.dumps({"input": "hello", "method": "cross-attention"}),
    })


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus"))
