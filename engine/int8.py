"""`--quantize int8`: the encoder's matrix products in int8, through ONNX Runtime.

The model is exported once with torch.onnx.export, then its weight matrices are quantised
per output channel to int8 (onnxruntime.quantization.quantize_dynamic: activations are
quantised on the fly, per batch). The first layer's feed-forward output stays in float32: on
all-MiniLM-L6-v2 it alone takes the worst sentence's cosine to full precision from 0.977 to 0.981
(the rest of the network quantises well). About 2.3x the float32 encoder's speed here; the
cosine to full precision and the search overlap are measured in benchmarks/bench_encode.py.

The quantised model is cached under $XDG_CACHE_HOME/simdex/onnx, named by the weights' sha256,
so only the first int8 encode of a model pays for the export (a few seconds).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

RECIPE = "q1"  # bump when the quantisation recipe changes: the cached files are then rebuilt
KEEP_FLOAT = ("layer.0/output/dense",)  # MatMuls left in float32 (see above)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "simdex" / "onnx"


class Int8Runtime:
    """An ONNX Runtime session over the quantised model, one per thread count."""

    def __init__(self, path: Path, with_pooler: bool):
        import threading

        self.path, self.with_pooler = path, with_pooler
        self._sessions = {}
        self._local = threading.local()  # which session this thread runs

    @classmethod
    def for_model(cls, model, sha256: str, with_pooler: bool) -> "Int8Runtime":
        path = cache_dir() / f"{sha256[:24]}-{RECIPE}-int8.onnx"
        if not path.exists():
            build(model, path)
        return cls(path, with_pooler)

    def _session(self, threads: int):
        import onnxruntime as ort

        if threads not in self._sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            self._sessions[threads] = ort.InferenceSession(str(self.path), options,
                                                           providers=["CPUExecutionProvider"])
        return self._sessions[threads]

    def one_thread(self) -> None:
        self._local.threads = 1

    def all_threads(self) -> None:
        self._local.threads = os.cpu_count() or 1

    def forward(self, input_ids: np.ndarray, mask: np.ndarray):
        threads = getattr(self._local, "threads", os.cpu_count() or 1)
        hidden, pooler = self._session(threads).run(None, {"input_ids": input_ids, "attention_mask": mask})
        return hidden, pooler if self.with_pooler else None


def build(model, path: Path) -> None:
    """Export `model` to ONNX and write its int8 quantisation to `path` (atomically)."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Outputs(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            output = self.inner(input_ids=input_ids, attention_mask=attention_mask)
            pooler = output.pooler_output if getattr(output, "pooler_output", None) is not None \
                else output.last_hidden_state[:, 0]
            return output.last_hidden_state, pooler

    path.parent.mkdir(parents=True, exist_ok=True)
    exported = path.with_name(f".{path.name}.{os.getpid()}.float.onnx")
    quantised = path.with_name(f".{path.name}.{os.getpid()}.partial")
    example = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "hidden": {0: "batch", 1: "tokens"}, "pooler": {0: "batch"}}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(Outputs(model).eval(), example, str(exported), input_names=["input_ids", "attention_mask"],
                              output_names=["hidden", "pooler"], dynamic_axes=axes, opset_version=17, dynamo=False)
        graph = onnx.load(str(exported), load_external_data=False).graph
        keep = [node.name for node in graph.node if node.op_type == "MatMul"
                and any(name in node.name for name in KEEP_FLOAT)]
        quantize_dynamic(str(exported), str(quantised), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=keep)
        os.replace(quantised, path)
    finally:
        exported.unlink(missing_ok=True)
        quantised.unlink(missing_ok=True)
