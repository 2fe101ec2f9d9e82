"""Where models run: CUDA in bf16 when present, else CPU in fp32 with a bounded thread count."""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Device:
    name: str  # "cuda" or "cpu"
    dtype: str  # "bfloat16" or "float32"
    threads: int  # CPU threads torch may use


def choose(prefer: str | None = None, threads: int | None = None) -> Device:
    """Picks the device for training or generation and sets torch's thread count.

    `prefer` ("cpu" / "cuda", default: MARKETING_AI_DEVICE or auto) forces a device; asking for
    CUDA where there is none is an error rather than a silent fallback. `threads` defaults to
    MARKETING_AI_TORCH_THREADS, else one per core, at most 8: more threads than cores on a small
    worker only adds contention between the worker processes.
    """
    # torch takes seconds to import: loaded with the model, not the module
    import torch

    prefer = prefer or os.environ.get("MARKETING_AI_DEVICE") or None
    if prefer not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', not {prefer!r}")
    has_cuda = torch.cuda.is_available()
    if prefer == "cuda" and not has_cuda:
        raise RuntimeError("MARKETING_AI_DEVICE=cuda but torch sees no CUDA device")
    use_cuda = has_cuda if prefer is None else prefer == "cuda"
    threads = (
        threads
        or int(os.environ.get("MARKETING_AI_TORCH_THREADS", 0))
        or min(os.cpu_count() or 1, 8)
    )
    torch.set_num_threads(threads)
    if use_cuda:
        return Device("cuda", "bfloat16" if torch.cuda.is_bf16_supported() else "float16", threads)
    return Device("cpu", "float32", threads)


def describe() -> dict:
    """A JSON-able description of the device a worker would use."""
    # torch takes seconds to import: loaded with the model, not the module
    import torch

    device = choose()
    info = {"device": device.name, "dtype": device.dtype, "threads": device.threads}
    info["torch"] = torch.__version__
    if device.name == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
