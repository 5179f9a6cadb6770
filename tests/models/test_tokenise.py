"""Our pure-Python tokenisers against the `tokenizers` library built from the same files."""

import json
import os
import unicodedata

import pytest

from mm_blender.errors import MMError
from mm_blender.models import minilm, smollm2, sources, tokenise

tokenizers = pytest.importorskip("tokenizers")

TRICKY = [
    "Hello world", "it's  we'll  I'M 'S ''s x's --'s ?'s",
    "a\n\nb  \n c\t\td   ",
    "numbers 12345 and 3.14, ½ Ⅻ ٣", "naïve café Ωmega 東京 😀 emoji", "  leading spaces",
    "trailing  ", "tabs\tand\r\nCRLF", "xxxxx", " \n\n ", "a \nb", "a  \n b", "Ünïcödé straße",
    "don't stop—ever…", "hello\u200bworld \x00 \ufffd", "supercalifragilistic" * 7,
    "a [SEP] b[MASK]c [unk]", "\x04\x06 ñ \U00040000", "a\u2028b\u2029c\x85d\ue000e\u0378",
]


@pytest.fixture(scope="module")
def texts():
    return [sources.default_text()] + TRICKY


def test_gpt2_bpe_matches_tokenizers(texts):
    folder = sources.package_file(sources.GPT2_BPE_DIR)
    vocab = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    merges = tokenise._read_merges(folder / "vocab.bpe")
    assert len(merges) == 50000 and len(vocab) == 50257
    reference = tokenizers.Tokenizer(tokenizers.models.BPE(vocab, merges))
    reference.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    ours = tokenise.gpt2_bpe()
    for text in texts:
        assert ours.encode(text)[0] == reference.encode(text).ids, text


def test_smollm2_bpe_matches_tokenizers(texts):
    gguf = smollm2.open_packaged().gguf
    tokens = gguf.field("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ")) for m in gguf.field("tokenizer.ggml.merges")]
    reference = tokenizers.Tokenizer(tokenizers.models.BPE(
        {t: i for i, t in enumerate(tokens)}, merges))
    pre = tokenizers.pre_tokenizers
    reference.pre_tokenizer = pre.Sequence([pre.Digits(individual_digits=True),
                                            pre.ByteLevel(add_prefix_space=False)])
    ours = tokenise.gguf_bpe(gguf)
    for text in texts:
        assert ours.encode(text)[0] == reference.encode(text).ids, text


def test_minilm_wordpiece_matches_its_tokenizer_json(texts):
    folder = sources.package_file(sources.MINILM_DIR)
    reference = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    reference.no_truncation()
    reference.no_padding()
    ours = tokenise.bert_wordpiece(str(folder))
    for text in texts:
        ids, strings = ours.encode(text)
        assert ids == reference.encode(text).ids, text
        assert strings == reference.encode(text).tokens


def test_default_text_gives_256_tokens_in_every_tokeniser():
    text = sources.default_text()
    counts = {"gpt2": len(tokenise.gpt2_bpe().encode(text)[0]),
              "smollm2": len(smollm2.open_packaged().encode(text, 10_000)[0]),
              "minilm": len(minilm.open_packaged().encode(text, 10_000)[0])}
    print(counts)
    assert min(counts.values()) >= 256
    assert 1200 <= len(text) <= 2000


def test_token_strings_read_as_text():
    ids, strings = tokenise.gpt2_bpe().encode("The matrix, multiplied.")
    assert strings == ["The", " matrix", ",", " multiplied", "."]
    assert len(ids) == len(strings)


def test_bad_tokenizer_files(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(MMError, match="tokenizer.json"):
        tokenise.bert_wordpiece(str(tmp_path))
    with pytest.raises(MMError, match="no tokenizer.json or vocab.txt"):
        tokenise.bert_wordpiece(str(tmp_path / "elsewhere"))


@pytest.fixture(scope="module")
def references():
    """(ours, tokenizers') pairs for all three tokenisers."""
    pre = tokenizers.pre_tokenizers
    folder = sources.package_file(sources.GPT2_BPE_DIR)
    gpt2 = tokenizers.Tokenizer(tokenizers.models.BPE(
        json.loads((folder / "encoder.json").read_text(encoding="utf-8")),
        tokenise._read_merges(folder / "vocab.bpe")))
    gpt2.pre_tokenizer = pre.ByteLevel(add_prefix_space=False)
    gguf = smollm2.open_packaged().gguf
    smol = tokenizers.Tokenizer(tokenizers.models.BPE(
        {t: i for i, t in enumerate(gguf.field("tokenizer.ggml.tokens"))},
        [tuple(m.split(" ")) for m in gguf.field("tokenizer.ggml.merges")]))
    smol.pre_tokenizer = pre.Sequence([pre.Digits(individual_digits=True),
                                       pre.ByteLevel(add_prefix_space=False)])
    bert_folder = sources.package_file(sources.MINILM_DIR)
    bert = tokenizers.Tokenizer.from_file(str(bert_folder / "tokenizer.json"))
    bert.no_truncation()
    bert.no_padding()
    return [(tokenise.gpt2_bpe(), gpt2), (tokenise.gguf_bpe(gguf), smol),
            (tokenise.bert_wordpiece(str(bert_folder)), bert)]


def test_random_text_tokenises_like_tokenizers(references):
    from hypothesis import given, settings, strategies as st

    alphabet = st.sampled_from(list(" \n\t'sStTdmlrve0123456789.,!?-aZ_éßΩ東😀½\u00a0\u2003\r"))
    # characters already in Unicode 3.2: for recent ones Python's tables (Unicode 14 in 3.11)
    # and the Rust crates' differ in age and disagree on the class (letter? combining mark?)
    assigned = st.characters(exclude_categories=("Cs",)).filter(
        lambda c: unicodedata.ucd_3_2_0.category(c) != "Cn")
    texts = st.text(alphabet, max_size=40) | st.text(assigned, max_size=20)

    @settings(max_examples=int(os.environ.get("MM_TOKENISE_EXAMPLES", 150)), deadline=None,
              database=None)
    @given(texts)
    def check(text):
        for ours, reference in references:
            assert ours.encode(text)[0] == reference.encode(text).ids, repr(text)

    check()
