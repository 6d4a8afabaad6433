"""``python -m ecgdist.embed``: one embedding per record, equal to the model's pooled features, resumable."""

import h5py
import numpy as np
import pytest
import torch

from ecgdist.config import FinetuneConfig, load_config, to_dict
from ecgdist.data.dataset import ShardCorpus
from ecgdist.data.index import read_index
from ecgdist.data.shards import read_manifest, read_metadata
from ecgdist.data.transforms import Transform
from ecgdist.embed import embed_corpus, main
from ecgdist.finetune.weights import build_finetune_model
from ecgdist.models.net1d import Net1D
from ecgdist.models.pretrained import save_weights

TINY = "configs/finetune/ptbxl_tiny.yaml"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, code15_corpus):
    """A tiny Net1D saved as a fine-tune job saves its model (config and recipe with it)."""
    cfg = load_config(FinetuneConfig, TINY, [f"data.corpus={code15_corpus}"])
    torch.manual_seed(0)
    model = build_finetune_model(cfg, "scratch", 6).eval()
    path = tmp_path_factory.mktemp("w") / "model.pth"
    save_weights(model, path, config=to_dict(cfg), recipe=read_manifest(code15_corpus).recipe.to_dict())
    return model, cfg, path


def test_an_embedding_is_the_models_pooled_features_of_its_record(code15_corpus, tiny_model, tmp_path, capsys):
    model, cfg, weights = tiny_model
    assert main([str(weights), str(code15_corpus), str(tmp_path / "emb.h5"), "--batch-size", "4", "--workers", "0",
                 "--quiet"]) == 0
    assert "10 embeddings of dimension 64" in capsys.readouterr().out
    table = read_metadata(code15_corpus, ["record_id", "labels"])
    with h5py.File(tmp_path / "emb.h5", "r") as f:
        embedding = f["embedding"][:]
        assert f["record_id"].asstr()[:].tolist() == table["record_id"].tolist()
        assert f["labels"].asstr()[:].tolist() == table["labels"].tolist()
        assert f["fold"][:].tolist() == read_index(code15_corpus).fold.tolist()  # the made folds
    d = cfg.data
    signals = ShardCorpus(code15_corpus).read(np.arange(10))
    x = torch.from_numpy(Transform(d.crop_samples, False, d.normalize, tuple(d.leads))(signals, np.random.default_rng()))
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    np.testing.assert_allclose(embedding, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(embedding).sum() > 0


def counted_forward(monkeypatch, fail_at: int = 0) -> list[int]:
    """Net1D's own forward_features, counting the batch sizes it sees; the ``fail_at``-th batch raises,
    as a killed run would stop."""
    calls, original = [], Net1D.forward_features

    def forward_features(self, x):
        calls.append(len(x))
        if len(calls) == fail_at:
            raise KeyboardInterrupt
        return original(self, x)

    monkeypatch.setattr(Net1D, "forward_features", forward_features)
    return calls


def test_an_interrupted_run_resumes_where_it_stopped(code15_corpus, tiny_model, tmp_path, monkeypatch):
    _, _, weights = tiny_model
    straight = embed_corpus(str(weights), code15_corpus, tmp_path / "straight.h5", batch_size=4, workers=0,
                            progress=False)
    out = tmp_path / "resumed.h5"
    with monkeypatch.context() as patch:
        counted_forward(patch, fail_at=3)
        with pytest.raises(KeyboardInterrupt):
            embed_corpus(str(weights), code15_corpus, out, batch_size=4, workers=0, progress=False)
    assert not out.exists()
    with h5py.File(tmp_path / "resumed.h5.partial", "r") as f:
        assert f.attrs["done"] == 8
    calls = counted_forward(monkeypatch)
    embed_corpus(str(weights), code15_corpus, out, batch_size=4, workers=0, progress=False)
    assert calls == [2]  # only the last two records were computed again
    with h5py.File(out, "r") as a, h5py.File(straight, "r") as b:
        np.testing.assert_array_equal(a["embedding"][:], b["embedding"][:])


def test_a_corpus_of_another_recipe_is_refused(ptbxl_ecgfounder_corpus, tiny_model, tmp_path, capsys):
    _, _, weights = tiny_model
    assert main([str(weights), str(ptbxl_ecgfounder_corpus), str(tmp_path / "e.h5"), "--quiet"]) == 2
    assert "filter ecgfounder (corpus) vs none (weights)" in capsys.readouterr().err
    assert not (tmp_path / "e.h5").exists() and not (tmp_path / "e.h5.partial").exists()
