"""`--quantize int8`: the encoder's matrix products in int8, through ONNX Runtime.

Dynamic int8 quantisation (activations quantised per batch, weights per output channel) loses
too much on BERT as it comes: a few hidden channels carry activations a hundred times larger
than the rest, so one scale per activation matrix leaves the others a handful of levels. So, as
SmoothQuant (Xiao et al. 2023) does, each Linear's input channels are first divided by
s_j = max|x_j|^0.75 / max|w_j|^0.25 and its weight rows multiplied by s_j: exactly the same
function in float32, with the outliers moved into the weights, which quantise per channel.
The first layer's feed-forward output stays in float32 (the one product still sensitive), and
texts of at most 8 tokens ("fantastic !") run wholly in float32 (sentences/model.py): a mean over
so few tokens averages no error out, and they cost next to nothing.

The maxima come from calibration texts: the first texts of the store's first int8 encode. The
quantised model is saved in the store (STORE/models/), so that every later encode and every
query of that store runs the very same model.
"""

from __future__ import annotations

import copy
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from ..files import atomic_write, temporary_path

RECIPE = "smoothquant-0.75-fold"
ALPHA = 0.75
KEEP_FLOAT = ("layer.0/output/dense",)  # MatMuls left in float32
CALIBRATION_TEXTS = 64


class Int8Runtime:
    """An ONNX Runtime session over the quantised model; a session per thread count."""

    def __init__(self, path: Path, with_pooler: bool):
        self.path, self.with_pooler = Path(path), with_pooler
        self._sessions = {}
        self._lock = threading.Lock()
        self._local = threading.local()  # the thread count this thread runs with
        for threads in {1, os.cpu_count() or 1}:  # sessions are built at load, not on the first batch
            self._session(threads)

    def _session(self, threads: int):
        import onnxruntime as ort

        with self._lock:
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


def quantize_model(model, tokenizer, texts: list[str], path: Path, max_length: int) -> None:
    """Smooth `model` on `texts`, export it and quantise it; write the result to `path`."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    smoothed = smooth(copy.deepcopy(model).float().cpu().eval(), tokenizer, texts, max_length)

    class Outputs(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            output = self.inner(input_ids=input_ids, attention_mask=attention_mask)
            pooler = getattr(output, "pooler_output", None)
            return output.last_hidden_state, output.last_hidden_state[:, 0] if pooler is None else pooler

    exported = temporary_path(path.parent, f"{path.name}.float.onnx")
    example = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "hidden": {0: "batch", 1: "tokens"}, "pooler": {0: "batch"}}
    try:
        with atomic_write(path) as quantised:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(Outputs(smoothed).eval(), example, str(exported),
                                  input_names=["input_ids", "attention_mask"], output_names=["hidden", "pooler"],
                                  dynamic_axes=axes, opset_version=17, dynamo=False)
            graph = onnx.load(str(exported), load_external_data=False).graph
            keep = [node.name for node in graph.node
                    if node.op_type == "MatMul" and any(name in node.name for name in KEEP_FLOAT)]
            quantize_dynamic(str(exported), str(quantised), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=keep)
    finally:
        exported.unlink(missing_ok=True)


def smooth(model, tokenizer, texts, max_length):
    """`model` with the Linears of its encoder layers taking inputs divided by per-channel
    factors (and weights multiplied by them): the same function, easier to quantise.

    Where the architecture allows, the division costs nothing: query, key and value share one
    factor vector (ONNX Runtime merges their identical Mul nodes), and the attention output's
    factors are folded into the value projection (its input is softmax(QK^T) V, linear in V)."""
    import torch

    maxima = input_maxima(model, tokenizer, texts, max_length)
    modules = dict(model.named_modules())
    done = set()
    for name, module in list(modules.items()):
        projections = [getattr(module, attr, None) for attr in ("query", "key", "value")]
        if not all(isinstance(p, torch.nn.Linear) for p in projections) or f"{name}.query" not in maxima:
            continue
        weight_max = torch.stack([p.weight.detach().abs().amax(dim=0) for p in projections]).amax(dim=0)
        shared = _factors(maxima[f"{name}.query"], weight_max)
        output_name = name.rsplit(".self", 1)[0] + ".output.dense" if name.endswith(".self") else None
        output = modules.get(output_name)
        if isinstance(output, torch.nn.Linear) and output_name in maxima:
            folded = _factors(maxima[output_name], output.weight.detach().abs().amax(dim=0))
            with torch.no_grad():
                module.value.weight.div_(folded[:, None])
                module.value.bias.div_(folded)
                output.weight.mul_(folded)
            done.add(output_name)
        for attr in ("query", "key", "value"):
            setattr(module, attr, scaled_input(getattr(module, attr), shared))
            done.add(f"{name}.{attr}")
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if (isinstance(child, torch.nn.Linear) and full in maxima and full not in done
                    and ".layer." in f".{full}"):
                factors = _factors(maxima[full], child.weight.detach().abs().amax(dim=0))
                setattr(module, child_name, scaled_input(child, factors))
    return model


def _factors(input_max, weight_max):
    return input_max.clamp(min=1e-5) ** ALPHA / weight_max.clamp(min=1e-5) ** (1 - ALPHA)


def input_maxima(model, tokenizer, texts, max_length) -> dict:
    """Each Linear's largest input magnitude per channel over `texts`."""
    import torch

    maxima, hooks = {}, []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            def hook(_, inputs, __, name=name):
                x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).abs().amax(dim=0)
                maxima[name] = torch.maximum(maxima[name], x) if name in maxima else x
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            for start in range(0, len(texts), 8):
                batch = tokenizer(texts[start:start + 8], padding=True, truncation=True, max_length=max_length,
                                  return_tensors="pt")
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        for hook in hooks:
            hook.remove()
    return maxima


def scaled_input(linear, factors):
    """A Linear taking its input divided by `factors`, its weight rows multiplied by them."""
    import torch

    class ScaledInput(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = copy.deepcopy(linear)
            self.register_buffer("inverse", 1.0 / factors)
            with torch.no_grad():
                self.linear.weight.mul_(factors)

        def forward(self, x):
            return self.linear(x * self.inverse)

    return ScaledInput()
