"""The linear read-out of frozen features (pre-training's probes use it)."""

import numpy as np

from ecgdist.tasks.linear_fit import C_GRID, fit, fit_scores, select_c
from ecgdist.tasks.metrics import macro_auroc, per_class_auroc


def linear_evaluation(features, targets):
    """C chosen on the validation split, the test split scored once with it."""
    c, _, _ = select_c(features["train"], targets["train"], features["val"], targets["val"])
    (test,) = fit_scores(features["train"], targets["train"], [features["test"]], c)
    return {"c": c, "test_macro_auroc": macro_auroc(targets["test"], test)}


def split(rng, n, weights):
    x = rng.normal(size=(n, 16))
    logits = x @ weights
    return x, (logits + rng.normal(scale=0.5, size=logits.shape) > 0).astype(float)


def test_informative_features_read_out_well_and_noise_does_not():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(16, 3))
    data = {name: split(rng, n, weights) for name, n in (("train", 400), ("val", 200), ("test", 200))}
    good = linear_evaluation({k: x for k, (x, _) in data.items()}, {k: y for k, (_, y) in data.items()})
    assert good["test_macro_auroc"] > 0.9 and good["c"] in C_GRID
    noise = {k: rng.normal(size=x.shape) for k, (x, _) in data.items()}
    bad = linear_evaluation(noise, {k: y for k, (_, y) in data.items()})
    assert 0.35 < bad["test_macro_auroc"] < 0.65


def test_a_class_without_training_positives_scores_a_constant_and_is_left_out():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(16, 2))
    data = {name: split(rng, n, weights) for name, n in (("train", 300), ("val", 100), ("test", 100))}
    data["train"][1][:, 1] = 0  # no training positive of class 1
    features = {k: x for k, (x, _) in data.items()}
    targets = {k: y for k, (_, y) in data.items()}
    result = linear_evaluation(features, targets)
    class_0_only = linear_evaluation(features, {k: y[:, :1] for k, y in targets.items()})
    assert np.isfinite(result["test_macro_auroc"])
    # the constant column ties every record: AUROC 0.5 for class 1 at every C, so the same C is chosen
    assert result["c"] == class_0_only["c"]
    assert np.isclose(result["test_macro_auroc"], (class_0_only["test_macro_auroc"] + 0.5) / 2)
    assert per_class_auroc(targets["test"][:, 1:], np.full((100, 1), 0.3))[0] == 0.5


def test_the_fitted_regressions_are_a_linear_layer_on_the_raw_features():
    """What a head set from ``fit`` outputs equals scikit-learn's own pipeline, scaler then regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(2)
    x, y = split(rng, 300, rng.normal(size=(16, 2)))
    x = x * rng.uniform(0.1, 20, size=16) + rng.normal(scale=5, size=16)  # features in their own units
    y[:, 1] = 1  # every training record positive: a constant
    weight, bias = fit(x, y, 0.1)
    probability = 1 / (1 + np.exp(-(x @ weight.T + bias)))
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000)).fit(x, y[:, 0])
    assert np.allclose(probability[:, 0], pipeline.predict_proba(x)[:, 1], atol=1e-4)
    assert np.allclose(probability[:, 1], 1 - 1e-6) and not weight[1].any()
