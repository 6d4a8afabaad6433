"""``forward_features`` plus the model's own pooling (``forward_head(..., pre_logits=True)``): the one
feature interface, the same for a classifier and for the encoder of a masked autoencoder."""

import pytest
import torch

from ecgdist.config import ModelSection
from ecgdist.models import build_model

X = torch.randn(3, 12, 1000, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("section, expected_pool", [
    (ModelSection(name="net1d", widths=[16, 32], blocks=[1, 1]), lambda f: f.mean(-1)),
    (ModelSection(name="mtecg_cls", pool="cls"), lambda f: f[:, 0]),
    (ModelSection(name="mtecg_cls", pool="mean"), lambda f: f[:, 1:].mean(1)),
])
def test_pooled_features_are_what_the_head_reads(section, expected_pool):
    model = build_model(section, num_samples=1000, num_classes=4).eval()
    with torch.no_grad():
        features = model.forward_features(X)
        pooled = model.forward_head(features, pre_logits=True)
        assert pooled.shape == (3, model.num_features)
        assert torch.allclose(pooled, expected_pool(features))
        assert torch.allclose(model.get_classifier()(pooled), model(X), atol=1e-6)


def test_an_autoencoders_encoder_gives_the_same_features_as_the_classifier_built_from_it():
    mae = build_model(ModelSection(name="mtecg_mae"), num_samples=1000).eval()
    classifier = build_model(ModelSection(name="mtecg_cls"), num_samples=1000, num_classes=4).eval()
    classifier.load_state_dict(mae.encoder.state_dict(), strict=False)  # all but the head
    with torch.no_grad():
        ours = mae.encoder.forward_head(mae.encoder.forward_features(X), pre_logits=True)
        theirs = classifier.forward_head(classifier.forward_features(X), pre_logits=True)
    assert torch.allclose(ours, theirs)
