"""Tensors and models from Python against a real local cluster: arrays of the
right dtype and shape, row shards, info, models loaded by unipoolctl, puts,
and the errors of bad names and arrays."""

import json
import os
import subprocess

import numpy as np
import pytest

import unipool
from cluster import bin_dir


def write_safetensors(path, tensors):
    """A safetensors file of (name, dtype, array) written with numpy alone."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, dtype, array in tensors:
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for _, _, array in tensors:
            f.write(np.ascontiguousarray(array).tobytes())


@pytest.fixture(scope="module")
def model(cluster, tmp_path_factory):
    """A model of F32, BF16 (uint16 bits), F8 (uint8 bits), I8 and BOOL
    tensors, loaded as "pymodel" by `unipoolctl model load`."""
    rng = np.random.default_rng(7)
    tensors = [
        ("w", "F32", rng.standard_normal((300, 1000), dtype=np.float32)),  # ~1.1 MiB
        ("embed", "BF16", rng.integers(0, 1 << 16, (64, 48), dtype=np.uint16)),
        ("scales", "F8_E4M3", rng.integers(0, 256, (8, 16), dtype=np.uint8)),
        ("q", "I8", rng.integers(-128, 128, (5, 7, 3), dtype=np.int8)),
        ("mask", "BOOL", rng.integers(0, 2, 10).astype(np.bool_)),
    ]
    path = str(tmp_path_factory.mktemp("model") / "model.safetensors")
    write_safetensors(path, tensors)
    subprocess.run([os.path.join(bin_dir(), "unipoolctl"), "--directory", cluster.directory,
                    "model", "load", path, "--name", "pymodel", "--stripe-size", "256KiB"],
                   check=True, capture_output=True, text=True)
    return {name: (dtype, array) for name, dtype, array in tensors}


def test_get_tensor_has_the_dtype_and_shape(client, model):
    numpy_types = {"F32": np.float32, "BF16": np.uint16, "F8_E4M3": np.uint8, "I8": np.int8,
                   "BOOL": np.bool_}
    for name, (dtype, expected) in model.items():
        got = client.get_tensor("pymodel/" + name)
        assert got.dtype == numpy_types[dtype], name
        assert got.shape == expected.shape, name
        np.testing.assert_array_equal(got, expected)


def test_bf16_bits_reinterpret_as_torch_bfloat16(client, model):
    torch = pytest.importorskip("torch")
    bits = client.get_tensor("pymodel/embed")
    as_bf16 = torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16)  # no copy
    assert as_bf16.dtype == torch.bfloat16 and as_bf16.shape == (64, 48)
    # bfloat16 is the top half of a float32: widening gives the same numbers.
    expected = torch.from_numpy((model["embed"][1].astype(np.uint32) << 16).view(np.float32))
    torch.testing.assert_close(as_bf16.float(), expected, rtol=0, atol=0, equal_nan=True)


def test_get_tensor_rows_is_a_shard_of_the_first_dimension(client, model):
    w = model["w"][1]
    rows = client.get_tensor_rows("pymodel/w", 100, 150)  # crosses stripe boundaries
    assert rows.shape == (150, 1000) and rows.dtype == np.float32
    np.testing.assert_array_equal(rows, w[100:250])
    np.testing.assert_array_equal(client.get_tensor_rows("pymodel/q", 4, 1), model["q"][1][4:5])
    with pytest.raises(unipool.InvalidArgument, match="not within its 300 rows"):
        client.get_tensor_rows("pymodel/w", 250, 51)


def test_tensor_info(client, model):
    info = client.tensor_info("pymodel/w")
    assert info["dtype"] == "F32" and info["numpy_dtype"] == np.float32
    assert info["shape"] == (300, 1000)
    assert info["length"] == 300 * 1000 * 4
    assert info["model"] == "pymodel"
    assert info["stripe_size"] == 256 << 10
    assert len(info["stripes"]) == -(-info["length"] // info["stripe_size"])
    assert all(len(s["nodes"]) == 1 for s in info["stripes"])
    assert client.tensor_info("pymodel/embed")["numpy_dtype"] == np.uint16


def test_load_model_returns_every_tensor(client, model):
    arrays = client.load_model("pymodel")
    assert list(arrays) == list(model)  # file order
    for name, (_, expected) in model.items():
        np.testing.assert_array_equal(arrays[name], expected)
    with pytest.raises(unipool.NotFound):
        client.load_model("no-such-model")


def test_put_tensor_round_trips(client, key):
    value = np.arange(24 * 1024, dtype=np.float64).reshape(24, 1024)
    client.put_tensor(key + "/f64", value, stripe_size=64 << 10)
    got = client.get_tensor(key + "/f64")
    assert got.dtype == np.float64 and got.shape == (24, 1024)
    np.testing.assert_array_equal(got, value)
    assert len(client.tensor_info(key + "/f64")["stripes"]) == 3

    bf16 = np.arange(100, dtype=np.uint16)
    client.put_tensor(key + "/bf16", bf16, dtype="BF16")
    assert client.tensor_info(key + "/bf16")["dtype"] == "BF16"
    client.put_tensor(key + "/u16", bf16)
    assert client.tensor_info(key + "/u16")["dtype"] == "U16"
    with pytest.raises(unipool.AlreadyExists):
        client.put_tensor(key + "/u16", bf16)


def test_bad_puts_and_names_raise(client, key):
    with pytest.raises(unipool.NotFound):
        client.get_tensor(key + "/missing")
    with pytest.raises(unipool.InvalidArgument, match="contiguous"):
        client.put_tensor(key + "/strided", np.zeros((8, 8), dtype=np.float32)[:, ::2])
    with pytest.raises(TypeError, match="no safetensors counterpart"):
        client.put_tensor(key + "/obj", np.array(["a", "b"]))
    with pytest.raises(unipool.InvalidArgument):
        client.put_tensor(key + "/bad-dtype", np.zeros(4, dtype=np.uint8), dtype="Q9")
