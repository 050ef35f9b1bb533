"""Fine-tuning a sentence store's encoder through a sentiment head: the trainee the loop drives.

    trainee = EncoderTrainee(folder, pooling, texts, labels, cfg)
    fit(trainee, labels, train, val, ...)
    trainee.save(destination)        # a model folder transformers and sentence-transformers both load

The model is the store's own BERT-family encoder (the one its current version records) with a
linear head on its pooled output, normalised to unit length as the store's vectors are, so that
`simdex predict` can read the head over `store.encode(texts)`. The loss is cross-entropy mixed with
a supervised contrastive term on those unit vectors (`contrastive`: its weight), which draws texts
of one label together in the space the store searches. AdamW (weight decay on weights,
not on biases and LayerNorm; the head at ten times the encoder's rate), a linear warm-up then a
linear decay to zero, gradient clipping, bfloat16 autocast on CUDA (where the GPU has it). Texts are
tokenized once; an epoch's shuffled rows are cut into pools of 64 batches, sorted by length
inside a pool, so that a batch pads to little more than its own texts, and the batches of a pool
are shuffled again.

`frozen_head` is the baseline: a logistic head on the fixed encodings, the encoder unchanged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ..sentences.model import ModelFolder, padded
from .config import EncoderTrainConfig

POOL_BATCHES = 64  # batches sorted by length together
TEMPERATURE = 0.1  # of the supervised contrastive term (chosen with its weight on inner splits: README)


class EncoderTrainee:
    def __init__(self, folder: ModelFolder, pooling: str, texts: list[str], labels: np.ndarray,
                 cfg: EncoderTrainConfig, device: str, store_max_length: int):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.folder, self.pooling, self.cfg, self.device = folder, pooling, cfg, device
        self.tokenizer = AutoTokenizer.from_pretrained(folder.path, local_files_only=True)
        encoder = AutoModel.from_pretrained(folder.path, local_files_only=True).float()
        # training reads texts cut to --max-length; validation reads them as the store encodes them
        # (its own maximum length), so that `simdex predict` gives back the validation accuracy
        self.ids = self._tokenized(texts, cfg.max_length or store_max_length)
        self.full_ids = self.ids if (cfg.max_length or store_max_length) == store_max_length else \
            self._tokenized(texts, store_max_length)
        self.labels = labels
        self.model = torch.nn.ModuleDict({"encoder": encoder, "head": torch.nn.Linear(encoder.config.hidden_size, 2)})
        self.model.to(device)
        decay = [p for n, p in encoder.named_parameters() if decays(n, p)]
        no_decay = [p for n, p in encoder.named_parameters() if not decays(n, p)]
        self.optimizers = [torch.optim.AdamW([
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
            {"params": list(self.model["head"].parameters()), "weight_decay": 0.0, "lr": 10 * cfg.lr},
        ], lr=cfg.lr)]
        self.steps_per_epoch = -(-int(round(len(texts) * (1 - cfg.val_split))) // cfg.batch_size)
        self.schedules = [warm_up_then_decay(self.optimizers[0], cfg.epochs * self.steps_per_epoch, cfg.warmup)]
        self.clip = cfg.clip
        self.autocast = _autocast_dtype(cfg.precision, device)

    # -- what the loop asks --------------------------------------------------------------------------

    def batches(self, rows: np.ndarray, rng) -> list[np.ndarray]:
        order = rng.permutation(rows)
        size = self.cfg.batch_size
        batches = []
        for start in range(0, len(order), size * POOL_BATCHES):
            chunk = order[start:start + size * POOL_BATCHES]
            chunk = chunk[np.argsort([len(self.ids[i]) for i in chunk], kind="stable")]
            pooled = [chunk[i:i + size] for i in range(0, len(chunk), size)]
            batches += [pooled[i] for i in rng.permutation(len(pooled))]
        return batches

    def loss(self, rows: np.ndarray, *, label_smoothing: float = 0.0, temperature: float = TEMPERATURE):
        """The head's cross-entropy mixed with the contrastive term (the keywords are for
        benchmarks/recipes_sentences.py)."""
        import torch

        labels = torch.as_tensor(self.labels[rows], dtype=torch.long, device=self.device)
        vectors = self.vectors(rows)
        loss = torch.nn.functional.cross_entropy(self.model["head"](vectors), labels, label_smoothing=label_smoothing)
        weight = self.cfg.contrastive
        if weight:
            loss = (1 - weight) * loss + weight * supervised_contrastive(vectors, labels, temperature)
        return loss

    def probabilities(self, rows: np.ndarray, batch: int = 64) -> np.ndarray:
        import torch

        was_training = self.model.training
        self.model.eval()
        out = np.empty(len(rows), dtype=np.float32)
        order = np.argsort([len(self.full_ids[i]) for i in rows], kind="stable")
        with torch.no_grad():
            for start in range(0, len(order), batch):
                part = order[start:start + batch]
                logits = self.logits(np.asarray(rows)[part], self.full_ids)
                out[part] = torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy()
        self.model.train(was_training)
        return out

    def _tokenized(self, texts, max_length: int) -> list[np.ndarray]:
        encoded = self.tokenizer(list(texts), truncation=True, max_length=max_length, padding=False,
                                 return_attention_mask=False, return_token_type_ids=False, verbose=False)
        return [np.asarray(row, dtype=np.int64) for row in encoded["input_ids"]]

    def logits(self, rows, ids=None):
        """The head's logits for `rows`, read from the training tokens (or from `ids`)."""
        return self.model["head"](self.vectors(rows, ids))

    def vectors(self, rows, ids=None):
        """The encoder's pooled unit vectors for `rows` (what the store would hold), differentiable."""
        import torch

        input_ids, mask = padded(self.ids if ids is None else ids, rows, self.tokenizer.pad_token_id or 0)
        input_ids, mask = torch.from_numpy(input_ids).to(self.device), torch.from_numpy(mask).to(self.device)
        with torch.autocast(self.device, dtype=self.autocast or torch.float32, enabled=self.autocast is not None):
            output = self.model["encoder"](input_ids=input_ids, attention_mask=mask)
            return pooled_unit(output, mask, self.pooling).float()

    # -- afterwards --------------------------------------------------------------------------------------

    def head_state(self) -> dict:
        return {name: value.detach().cpu() for name, value in self.model["head"].state_dict().items()}

    def save(self, destination: Path) -> None:
        """The fine-tuned encoder as a model folder: safetensors weights, config and tokenizer (for
        transformers' AutoModel), and sentence-transformers' module files (for SentenceTransformer)."""
        encoder = self.model["encoder"]
        encoder.save_pretrained(destination, safe_serialization=True)
        self.tokenizer.save_pretrained(destination)
        write_sentence_transformers_files(destination, self.folder, self.pooling, encoder.config.hidden_size)


def pooled_unit(output, mask, pooling: str):
    """The tutorial's pooling (sentences/model.py's, in torch and differentiable), normalised."""
    import torch

    if pooling == "pooler":
        pooled = output.pooler_output
    elif pooling == "cls":
        pooled = output.last_hidden_state[:, 0]
    else:
        m = mask.unsqueeze(-1).to(output.last_hidden_state.dtype)
        pooled = (output.last_hidden_state * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled.float(), dim=1)


def write_sentence_transformers_files(destination: Path, parent: ModelFolder, pooling: str, dim: int) -> None:
    """modules.json, 1_Pooling/config.json, 2_Normalize and sentence_bert_config.json: the parent
    folder's where it has them (its max_seq_length kept), else written for `pooling`."""
    destination = Path(destination)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    (destination / "modules.json").write_text(json.dumps(modules, indent=2))
    (destination / "1_Pooling").mkdir(exist_ok=True)
    (destination / "2_Normalize").mkdir(exist_ok=True)
    (destination / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": dim, "pooling_mode_cls_token": pooling != "mean",
        "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False}, indent=2))
    (destination / "sentence_bert_config.json").write_text(json.dumps(
        {"max_seq_length": parent.max_length, "do_lower_case": False}, indent=2))
    for name in ("config_sentence_transformers.json",):
        if (parent.path / name).is_file():
            shutil.copy(parent.path / name, destination / name)


def supervised_contrastive(vectors, target, tau: float):
    """Gunel et al. 2021's term over a batch of unit vectors: each text is pulled towards the
    batch's other texts of its label and pushed from the rest, at temperature `tau`."""
    import torch

    n = len(target)
    itself = torch.eye(n, dtype=torch.bool, device=vectors.device)
    similarity = (vectors @ vectors.T / tau).masked_fill(itself, float("-inf"))
    log_share = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    same = (target[:, None] == target[None, :]) & ~itself
    counts = same.sum(1)
    has = counts > 0
    if not has.any():
        return vectors.sum() * 0.0
    return (-(log_share.masked_fill(~same, 0.0).sum(1)[has] / counts[has])).mean()


def decays(name: str, parameter) -> bool:
    """AdamW's weight decay applies to weights, not to biases or LayerNorm."""
    return parameter.ndim > 1 and "LayerNorm" not in name


def two_class_head(weights: np.ndarray) -> dict:
    """A logistic head (d weights, then the bias) as a linear one over two classes: P(1) is the
    softmax of the pair, the same probability."""
    return {"weight": np.stack([np.zeros_like(weights[:-1]), weights[:-1]]), "bias": np.array([0.0, weights[-1]])}


def warm_up_then_decay(optimizer, steps: int, warmup: float):
    """A linear warm-up over `warmup` of the `steps`, then a linear decay to zero."""
    import torch

    total = max(1, steps)
    warm = max(1, int(warmup * total))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm))))


def frozen_head(encodings: np.ndarray, labels: np.ndarray, train: np.ndarray, l2: float = 1e-4):
    """The baseline: a logistic head on fixed unit encodings, fitted on the training rows.
    Returns (weights, P(label 1) of every row)."""
    import torch

    from .probe import fit_probe, probe_scores

    x = torch.from_numpy(np.ascontiguousarray(encodings, dtype=np.float32))
    weights = fit_probe(x[torch.from_numpy(train)], torch.from_numpy(labels[train]).float(), l2)
    return weights, probe_scores(weights, x).sigmoid().numpy()


def _autocast_dtype(precision: str, device: str):
    """bfloat16 autocast (no loss scaling needed), or None: float32."""
    import torch

    if precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else None
    if device == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        from ..errors import BadOption

        raise BadOption("--precision bf16: this CPU has no bfloat16 instructions (AVX512-BF16 or AMX)")
    return torch.bfloat16

