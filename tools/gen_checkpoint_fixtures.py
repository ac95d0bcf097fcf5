"""Generates the PyTorch and NumPy checkpoint fixtures in Tests/SSFFormatsTests/Checkpoints.

Pinned environment: torch==2.5.1, numpy==2.4.6, safetensors==0.8.0 (Python 3.11). The byte
layout of the files depends on these versions (torch's zip writer and pickler, numpy's .npy
writer); the values do not. Regenerate with

    ~/venv-torch/bin/python tools/gen_checkpoint_fixtures.py

Good files (TorchCheckpointTests / NumPyArchiveTests assert every value exactly):
  state_dict_zip.pth          torch.save (zip format) of {"state_dict": <module.-prefixed tensors>,
                              "epoch": 3, numpy scalar, argparse.Namespace, optimizer state}
  state_dict_legacy.pth.tar   the same object with _use_new_zipfile_serialization=False
  model_only.bin              zip format, {"model": <unprefixed tensors>}
  untyped_v3.pth              hand-built: _rebuild_tensor_v3 with dtype torch.float16 over an
                              untyped storage, as a transposed view ([[1, -0.5], [2, 65504]])
  expected_torch.safetensors  every tensor of the state dict as float32, keys without "module."
  arrays.npz                  np.savez_compressed (deflate) with f4, f8, Fortran-order, f2, i8, u1,
                              bool and a 0-d array, names like Google ViT's
  arrays_stored.npz           np.savez (stored) of two of them
  expected_npz.safetensors    the npz arrays as float32
Malformed files (each must fail with a CheckpointError naming the file and a specific phrase):
  malicious_system.pth, malicious_eval_legacy.pth, unknown_global.pth, unknown_opcode.pth,
  truncated.pth, missing_data_pkl.pth, missing_storage.pth, storage_too_small.pth,
  stack_underflow.pth, memo_missing.pth, deep_nesting.pth, bad_magic_legacy.pth, big_endian.pth,
  object_array.npz, big_endian.npz, bad_npy_magic.npz, short_data.npz, corrupt_deflate.npz,
  truncated.npz
"""
import argparse
import io
import os
import pickle
import shutil
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import safetensors.torch
import torch

OUT = Path(__file__).resolve().parent.parent / "Tests" / "SSFFormatsTests" / "Checkpoints"


def state_dict():
    """Tensors covering every dtype, a transposed view, shared storages with offsets, a stride-0
    expansion, an empty tensor, a 0-d tensor and a Parameter."""
    g = torch.Generator().manual_seed(0)
    base = torch.arange(12, dtype=torch.float32) * 0.5 - 2.0
    transposed = torch.randn(4, 5, generator=g)
    sd = OrderedDict()
    sd["fc.weight"] = torch.randn(3, 4, generator=g)
    sd["fc.bias"] = torch.nn.Parameter(torch.randn(3, generator=g))
    sd["half"] = torch.tensor([1.0, -2.5, 65504.0, 6.1035156e-05, 5.96e-08], dtype=torch.float16)
    sd["bf16"] = torch.tensor([1.0, -3.140625, 1e30, -0.0078125], dtype=torch.bfloat16)
    sd["double"] = torch.tensor([[0.1, -1e-10], [3.0, 1e20]], dtype=torch.float64)
    sd["long"] = torch.tensor([-7, 0, 123456], dtype=torch.int64)
    sd["int"] = torch.tensor([[5, -6]], dtype=torch.int32)
    sd["byte"] = torch.tensor([0, 7, 255], dtype=torch.uint8)
    sd["mask"] = torch.tensor([True, False, True])
    sd["bn.num_batches_tracked"] = torch.tensor(42)
    sd["proj.weight"] = transposed.t()  # shape [5, 4], stride (1, 5)
    sd["shared.a"] = base[2:8].view(2, 3)  # storage offset 2
    sd["shared.b"] = base[6:]  # same storage, offset 6
    sd["shared.column"] = base.view(3, 4)[:, 1]  # offset 1, stride 4
    sd["expanded"] = torch.tensor([1.5, -2.0, 4.0]).expand(2, 3)  # stride (0, 1)
    sd["empty"] = torch.zeros(0, 3)
    assert not sd["proj.weight"].is_contiguous()
    assert sd["shared.a"].untyped_storage().data_ptr() == sd["shared.b"].untyped_storage().data_ptr()
    return sd


def expected(sd):
    return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in sd.items()}


def checkpoint(sd):
    prefixed = OrderedDict(("module." + k, v) for k, v in sd.items())
    first = prefixed["module.fc.weight"]
    return {
        "state_dict": prefixed,
        "epoch": 3,
        "arch": "vit_tiny_patch16_224",
        "metric": np.float64(81.25),
        "args": argparse.Namespace(model="vit_tiny_patch16_224", lr=0.001),
        "optimizer": {"state": {0: {"exp_avg": torch.ones_like(first)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
    }


# Hand-built pickles for malformed files: these classes only shape what pickle writes.

class FakeStorage:
    def __init__(self, key, numel, storage_type=torch.FloatStorage):
        self.key, self.numel, self.storage_type = key, numel, storage_type


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class FakeTensorV3:
    """A tensor of `dtype` over an untyped (byte) storage, as `_rebuild_tensor_v3` rebuilds it."""

    def __init__(self, storage, offset, size, stride, dtype):
        self.args = (storage, offset, tuple(size), tuple(stride), False, OrderedDict(), dtype)

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v3, self.args)


class StoragePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.numel)
        return None


def torch_pickle(obj):
    buffer = io.BytesIO()
    StoragePickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def torch_zip(path, data_pkl, storages=None, extra=None):
    """A zip laid out like torch.save's: archive/data.pkl, archive/data/<key>, archive/version."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        if data_pkl is not None:
            z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/version", "3\n")
        for key, raw in (storages or {}).items():
            z.writestr(f"archive/data/{key}", raw)
        for name, raw in (extra or {}).items():
            z.writestr(f"archive/{name}", raw)


class CallsSystem:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class CallsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('echo pwned')",))


class Unlisted:
    """Pickled as a reference to this script's own class, a global no checkpoint needs."""


def write_torch_fixtures():
    sd = state_dict()
    torch.save(checkpoint(sd), OUT / "state_dict_zip.pth")
    torch.save(checkpoint(sd), OUT / "state_dict_legacy.pth.tar", _use_new_zipfile_serialization=False)
    torch.save({"model": sd}, OUT / "model_only.bin")
    safetensors.torch.save_file(expected(sd), OUT / "expected_torch.safetensors")

    four = np.arange(4, dtype="<f4").tobytes()
    # Four float16 values in an 8-byte untyped storage, read as a transposed [2, 2] view.
    halves = np.array([1.0, 2.0, -0.5, 65504.0], dtype="<f2").tobytes()
    untyped = FakeTensorV3(FakeStorage("0", 8, torch.UntypedStorage), 0, [2, 2], [1, 2], torch.float16)
    torch_zip(OUT / "untyped_v3.pth", torch_pickle({"w": untyped}), {"0": halves})
    ok_tensor = FakeTensor(FakeStorage("0", 4), 0, [4], [1])

    torch.save({"state_dict": {"w": torch.ones(2)}, "hook": CallsSystem()}, OUT / "malicious_system.pth")
    torch.save({"w": torch.ones(2), "x": CallsEval()}, OUT / "malicious_eval_legacy.pth",
               _use_new_zipfile_serialization=False)
    torch_zip(OUT / "unknown_global.pth", torch_pickle({"w": ok_tensor, "x": Unlisted()}), {"0": four})
    # 0x49 is protocol 0's INT opcode, which no torch.save pickle uses.
    torch_zip(OUT / "unknown_opcode.pth", b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01I1\ns.", {})
    whole = (OUT / "state_dict_zip.pth").read_bytes()
    (OUT / "truncated.pth").write_bytes(whole[: len(whole) // 2])
    torch_zip(OUT / "missing_data_pkl.pth", None, {"0": four})
    torch_zip(OUT / "missing_storage.pth", torch_pickle({"w": ok_tensor}), {})
    # A [2, 3] tensor at offset 1 needs 7 elements; the storage has 4.
    too_small = FakeTensor(FakeStorage("0", 4), 1, [2, 3], [3, 1])
    torch_zip(OUT / "storage_too_small.pth", torch_pickle({"w": too_small}), {"0": four})
    torch_zip(OUT / "stack_underflow.pth", b"\x80\x02}q\x00X\x01\x00\x00\x00ws.", {})
    torch_zip(OUT / "memo_missing.pth", b"\x80\x02}q\x00X\x01\x00\x00\x00wh\x07s.", {})
    torch_zip(OUT / "deep_nesting.pth", b"\x80\x02" + b"(" * 5000 + b"N" + b"t" * 5000 + b".", {})
    torch_zip(OUT / "big_endian.pth", torch_pickle({"w": ok_tensor}), {"0": four}, {"byteorder": "big"})
    legacy = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6D, legacy, protocol=2)  # one more than torch's magic number
    pickle.dump(1001, legacy, protocol=2)
    (OUT / "bad_magic_legacy.pth").write_bytes(legacy.getvalue())


def npz_arrays():
    rng = np.random.default_rng(0)
    return {
        "Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel": rng.standard_normal((2, 3)).astype("<f4"),
        "Transformer/encoderblock_0/MlpBlock_3/Dense_0/bias": np.array([0.1, -2.0, 1e-300, 3e38], dtype="<f8"),
        "embedding/kernel": np.asfortranarray(rng.standard_normal((2, 3, 2)).astype("<f4")),
        "half": np.array([0.5, -1.0, 65504.0], dtype="<f2"),
        "step": np.array([7, -8], dtype="<i8"),
        "pixels": np.array([[0, 128, 255]], dtype="|u1"),
        "flags": np.array([True, False], dtype="|b1"),
        "scale": np.array(2.5, dtype="<f4"),
    }


def npy_bytes(header, data):
    """A version 1.0 .npy file with the given header dict text."""
    text = header.encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + data


def write_npz_fixtures():
    arrays = npz_arrays()
    np.savez_compressed(OUT / "arrays.npz", **arrays)
    assert arrays["embedding/kernel"].flags.f_contiguous and not arrays["embedding/kernel"].flags.c_contiguous
    np.savez(OUT / "arrays_stored.npz", **{k: arrays[k] for k in ["half", "step"]})
    safetensors.torch.save_file({k: torch.from_numpy(v.astype(np.float32, order="C")) for k, v in arrays.items()},
                                OUT / "expected_npz.safetensors")

    np.savez(OUT / "object_array.npz", w=np.array([{"a": 1}, None], dtype=object))
    np.savez(OUT / "big_endian.npz", w=np.array([1.0, 2.0], dtype=">f4"))
    with zipfile.ZipFile(OUT / "bad_npy_magic.npz", "w") as z:
        z.writestr("w.npy", b"\x93NUMPX\x01\x00" + bytes(8))
    with zipfile.ZipFile(OUT / "short_data.npz", "w") as z:
        z.writestr("w.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }", bytes(8)))
    # Deflated entry whose compressed bytes are damaged (the CRC and sizes stay as written).
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("w.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (64,), }",
                                      np.arange(64, dtype="<f4").tobytes()))
    damaged = bytearray(buffer.getvalue())
    data_start = 30 + len("w.npy")
    for i in range(data_start + 4, data_start + 12):
        damaged[i] ^= 0x5A
    (OUT / "corrupt_deflate.npz").write_bytes(bytes(damaged))
    whole = (OUT / "arrays.npz").read_bytes()
    (OUT / "truncated.npz").write_bytes(whole[: len(whole) - 40])


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    write_torch_fixtures()
    write_npz_fixtures()
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, to {OUT}")
    assert total < 100_000


if __name__ == "__main__":
    main()
