#!/usr/bin/env python3
"""Writes the malformed safetensors corpus in Tests/SSFFormatsTests/Malformed/.

Each file breaks exactly one rule of the format; SafeTensorsMalformedTests asserts the
phrase each one must produce. Standard library only. Run from the repository root:
    python3 tools/make_malformed_safetensors.py
"""
import json
import os
import struct

OUT = os.path.join("Tests", "SSFFormatsTests", "Malformed")

F32_PAIR = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
DATA8 = struct.pack("<2f", 1.0, 2.0)


def header_file(header, data=b"", length=None):
    """Length prefix + header (str, bytes or JSON-able object) padded to 8 bytes + data."""
    if isinstance(header, dict) or isinstance(header, list):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode("utf-8")
    header += b" " * (-len(header) % 8)
    if length is None:
        length = len(header)
    return struct.pack("<Q", length) + header + data


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


CORPUS = {
    "too_short": b"\x10\x00\x00\x00\x00",
    "header_absurd_length": struct.pack("<Q", 1 << 40) + b"{}      ",
    "header_beyond_file": header_file("{}", length=4096),
    "invalid_utf8": header_file(b'{"w\xff": ' + json.dumps(F32_PAIR).encode() + b"}", DATA8),
    "invalid_json": header_file('{"w": {"dtype": "F32",', DATA8),
    "not_object": header_file("[1, 2]"),
    "duplicate_key": header_file('{"w": %s, "w": %s}' % (json.dumps(F32_PAIR), json.dumps(F32_PAIR)), DATA8),
    "deep_nesting": header_file("[" * 200 + "]" * 200),
    "unpaired_surrogate": header_file('{"w\\ud800": %s}' % json.dumps(F32_PAIR), DATA8),
    "entry_not_object": header_file({"w": [1, 2]}),
    "missing_dtype": header_file({"w": {"shape": [2], "data_offsets": [0, 8]}}, DATA8),
    "missing_shape": header_file({"w": {"dtype": "F32", "data_offsets": [0, 8]}}, DATA8),
    "missing_data_offsets": header_file({"w": {"dtype": "F32", "shape": [2]}}, DATA8),
    "dtype_not_string": header_file({"w": entry(dtype=7)}, DATA8),
    "shape_not_array": header_file({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}, DATA8),
    "offsets_three_values": header_file({"w": entry(offsets=(0, 4, 8))}, DATA8),
    "offsets_not_integers": header_file({"w": entry(offsets=("0", "8"))}, DATA8),
    "negative_shape": header_file({"w": entry(shape=(-2,))}, DATA8),
    "fractional_shape": header_file({"w": entry(shape=(2.5,))}, DATA8),
    "unknown_dtype": header_file({"w": entry(dtype="F17")}, DATA8),
    "offsets_reversed": header_file({"w": entry(offsets=(8, 0))}, DATA8),
    "offsets_beyond_buffer": header_file({"w": entry(offsets=(0, 8))}, DATA8[:4]),
    "offset_huge": header_file('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 18446744073709551616]}}', DATA8),
    "size_mismatch": header_file({"w": entry(shape=(3,), offsets=(0, 8))}, DATA8),
    "shape_overflow": header_file({"w": entry(shape=(1 << 40, 1 << 40), offsets=(0, 8))}, DATA8),
    "overlap": header_file({"a": entry(offsets=(0, 8)), "b": entry(shape=(1,), offsets=(4, 8))}, DATA8),
    "hole_between": header_file({"a": entry(shape=(1,), offsets=(0, 4)), "b": entry(shape=(1,), offsets=(8, 12))}, DATA8 + DATA8[:4]),
    "hole_at_end": header_file({"w": entry(shape=(1,), offsets=(0, 4))}, DATA8),
    "metadata_not_object": header_file({"__metadata__": ["a"], "w": F32_PAIR}, DATA8),
    "metadata_value_not_string": header_file({"__metadata__": {"epoch": 3}, "w": F32_PAIR}, DATA8),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, content in sorted(CORPUS.items()):
        assert len(content) <= 512, name
        with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
            f.write(content)
    print("wrote %d files to %s" % (len(CORPUS), OUT))


if __name__ == "__main__":
    main()
