#!/usr/bin/python3
"""Writes safetensors test models with numpy, independently of unipool's own
writer: OUT/model.safetensors (F32, BF16, I8 and one big F32 tensor of
BIG_MIB MiB) and OUT/sharded/ (two shards and model.safetensors.index.json).

Usage: make_model.py OUT BIG_MIB
Values are a deterministic function of the position, so a test can compute
any slice again from the file itself."""
import json
import os
import sys

import numpy as np


def tensors(big_mib):
    rows = 100
    cols = big_mib * (1 << 20) // 4 // rows
    big = (np.arange(rows * cols, dtype=np.uint32) * 2654435761 % 1000003).astype(np.float32)
    embed = (np.arange(1000 * 64, dtype=np.uint32) * 40503 % 65521).astype(np.uint16)  # BF16 bits
    q = (np.arange(333 * 77, dtype=np.int64) % 251 - 125).astype(np.int8)
    bias = np.linspace(-1.0, 1.0, 17, dtype=np.float32)
    return [
        ("model.embed_tokens.weight", "BF16", [1000, 64], embed),
        ("model.layers.0.q_proj.weight", "I8", [333, 77], q),
        ("model.layers.0.big.weight", "F32", [rows, cols], big),
        ("model.norm.bias", "F32", [17], bias),
    ]


def write(path, entries, metadata):
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, array in entries:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for _, _, _, array in entries:
            f.write(array.astype(array.dtype.newbyteorder("<")).tobytes())


def main():
    out, big_mib = sys.argv[1], int(sys.argv[2])
    entries = tensors(big_mib)
    write(os.path.join(out, "model.safetensors"), entries, {"format": "pt", "source": "numpy"})
    small = [e for e in entries if e[0] != "model.layers.0.big.weight"]
    shards = os.path.join(out, "sharded")
    os.makedirs(shards, exist_ok=True)
    files = {"model-00001-of-00002.safetensors": small[:2],
             "model-00002-of-00002.safetensors": small[2:]}
    weight_map = {}
    for name, part in files.items():
        write(os.path.join(shards, name), part, {"format": "pt"})
        weight_map.update({e[0]: name for e in part})
    index = {"metadata": {"total_size": sum(e[3].nbytes for e in small)}, "weight_map": weight_map}
    with open(os.path.join(shards, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)


if __name__ == "__main__":
    main()
