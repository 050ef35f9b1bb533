"""The on-disk matrix format is safetensors: torch and numpy readers read what we write."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from simdex.engine.backends.tensorfile import MatrixWriter, read_matrix, write_matrix


def test_round_trip_through_safetensors_torch_and_numpy(tmp_path):
    import safetensors.numpy
    import safetensors.torch

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(1001, 7)).astype(np.float32)
    path = tmp_path / "m.safetensors"
    with MatrixWriter(path, 7, metadata={"version": "3"}) as writer:
        writer.append(matrix[:500])
        writer.append(matrix[500:])
    ours = read_matrix(path)
    assert isinstance(ours, np.memmap) and ours.dtype == np.float32 and ours.shape == (1001, 7)
    assert_array_equal(ours, matrix)
    assert_array_equal(safetensors.numpy.load_file(path)["vectors"], matrix)
    tensor = safetensors.torch.load_file(path)["vectors"]
    assert tensor.dtype.is_floating_point and tuple(tensor.shape) == (1001, 7)
    assert_array_equal(tensor.numpy(), matrix)
    with open(path, "rb") as f:  # the data starts 64-byte aligned, for memory maps
        assert int.from_bytes(f.read(8), "little") + 8 == 512


def test_files_written_by_safetensors_are_read(tmp_path):
    import safetensors.numpy

    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    safetensors.numpy.save_file({"vectors": matrix}, tmp_path / "theirs.safetensors")
    assert_array_equal(read_matrix(tmp_path / "theirs.safetensors"), matrix)


def test_empty_matrix_and_bad_shapes(tmp_path):
    write_matrix(tmp_path / "e.safetensors", np.zeros((0, 5), np.float32))
    assert read_matrix(tmp_path / "e.safetensors").shape == (0, 5)
    with MatrixWriter(tmp_path / "x.safetensors", 5) as writer:
        with pytest.raises(ValueError, match=r"shape \(n, 5\)"):
            writer.append(np.zeros((2, 4), np.float32))


def test_an_exception_removes_the_partial_file(tmp_path):
    path = tmp_path / "p.safetensors"
    with pytest.raises(RuntimeError):
        with MatrixWriter(path, 3) as writer:
            writer.append(np.ones((2, 3), np.float32))
            raise RuntimeError("boom")
    assert not path.exists()


def test_store_tensor_feeds_nn_embedding(tiny_store):
    import torch

    tensor = tiny_store.tensor(device="cpu")
    assert tensor.dtype == torch.float32 and tuple(tensor.shape) == (6, 4)
    embedding = torch.nn.Embedding.from_pretrained(tensor, freeze=False)
    row = tiny_store.id_of("queen")
    assert_array_equal(embedding(torch.tensor([row])).detach().numpy()[0], tiny_store.matrix()[row])
