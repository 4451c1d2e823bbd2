"""The policy snapshot format: an uncompressed NumPy ``.npz`` archive (a ZIP file).

Members:

- ``__meta__.npy``: a uint8 array holding UTF-8 JSON ``{"format": "cbserve-policy",
  "format_version": 1, "type": <registry name or "module:Class">, "params": {...
  constructor arguments ...}, "state": {... small learned values ...}}``;
- one ``<name>.npy`` per learned array (float64 or int64; for VW, ``vw_model`` holds
  VW's own model bytes as uint8).

It is read with ``allow_pickle=False``: loading a snapshot never executes code.
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from .errors import SnapshotError

FORMAT = "cbserve-policy"
FORMAT_VERSION = 1
_META = "__meta__"


def pack(type_name: str, params: dict, state: dict, arrays: dict) -> bytes:
    """Serialise a policy: JSON-able params/state plus named numpy arrays."""
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "type": type_name,
            "params": params, "state": state}
    blob = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **{_META: blob}, **arrays)
    return buf.getvalue()


def unpack(data: bytes) -> tuple:
    """Return ``(meta, arrays)``; raise :class:`SnapshotError` on anything else."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop(_META).tobytes())
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, TypeError) as exc:
        raise SnapshotError(f"not a cbserve policy snapshot: {exc}") from exc
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise SnapshotError(f"unsupported snapshot format {meta.get('format')!r} "
                            f"version {meta.get('format_version')!r}")
    return meta, arrays
