"""Parameter count and size of a local model read from its weight files, without loading it.

For a model that runs in-process but does not report its own footprint (a local ``hf/`` teacher
served through litellm): safetensors headers (JSON: tensor name -> shape) or the GGUF tensor table
give the count; nothing is loaded into memory.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path


def local_path(spec: str) -> Path | None:
    """The file or folder of a local model spec (``hf/<folder | file.gguf | pkg:...>``), if on disk."""
    from stillhouse.kernel.errors import ModelError
    from stillhouse.plugins.hf_models import resolve_spec

    try:
        path = Path(resolve_spec(spec.removeprefix("hf/")))
    except ModelError:
        return None
    return path if path.exists() else None


def _safetensors_count(path: Path) -> int:
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    return sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")


def _gguf_count(path: Path) -> int:
    from gguf import GGUFReader

    return sum(int(tensor.n_elements) for tensor in GGUFReader(str(path)).tensors)


def parameters_on_disk(path: Path) -> int | None:
    """Parameters stored in a .gguf file or a folder of .safetensors files; None for other formats.

    Tied weights are stored once (transformers drops the tied copy), so this matches counting the
    loaded model's unique parameters."""
    if path.is_file():
        return _gguf_count(path) if path.suffix == ".gguf" else None
    shards = sorted(path.glob("*.safetensors"))
    return sum(_safetensors_count(shard) for shard in shards) if shards else None
