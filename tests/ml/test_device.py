"""The engine's device choice. Plain pytest: no database, no Django."""

import pytest

from marketing_ai.ml import device


def test_cpu_is_float32_with_bounded_threads():
    import torch

    chosen = device.choose("cpu", threads=1)
    assert chosen == device.Device("cpu", "float32", 1)
    assert torch.get_num_threads() == 1


def test_asking_for_missing_cuda_is_an_error(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        device.choose("cuda")


def test_unknown_device_is_refused():
    with pytest.raises(ValueError):
        device.choose("tpu")


def test_describe_is_json_ready():
    import json

    info = device.describe()
    assert info["device"] in ("cpu", "cuda")
    json.dumps(info)
