"""The fine-tune job on the real ptbxl-mini corpus: strategies, selection on fold 9 only, resume."""

import dataclasses
import json
import shutil
import time

import h5py
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from ecgdist.config import ConfigError, FinetuneConfig, ModelSection, load_config
from ecgdist.data.dataset import ShardCorpus
from ecgdist.data.index import read_index, write_index
from ecgdist.data.shards import ShardEntry, read_manifest, read_metadata, write_manifest
from ecgdist.files import file_sha256
from ecgdist.finetune.job import (
    FinetuneJob,
    JobSpec,
    Loaders,
    make_optimizer,
    run_job,
    train_epoch,
)
from ecgdist.finetune.provenance import UNKNOWN
from ecgdist.finetune.weights import build_finetune_model, starting_weights
from ecgdist.models.pretrained import read_weights, save_weights

TINY = "configs/finetune/ptbxl_tiny.yaml"


@pytest.fixture(scope="module")
def weights(tmp_path_factory, ptbxl_corpus):
    """Released-format weights of a tiny Net1D (random: the mechanics, not the numbers, are tested)."""
    cfg = load_config(FinetuneConfig, TINY, [f"data.corpus={ptbxl_corpus}"])
    torch.manual_seed(0)
    model = build_finetune_model(cfg, "scratch", 150)
    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    save_weights(model, path)
    return path


def tiny(corpus, weights, *overrides):
    from conftest import REPO
    return load_config(FinetuneConfig, REPO / TINY, [f"data.corpus={corpus}", f"finetune.weights={weights}",
                                                     "finetune.bootstrap=50", *overrides])


def test_probe_stage_freezes_the_backbone_and_trains_the_head(ptbxl_corpus, weights):
    cfg = tiny(ptbxl_corpus, weights)
    spec = JobSpec("superdiagnostic", "post_training", 1.0, 0)
    loaders = Loaders(cfg, spec)
    model = build_finetune_model(cfg, spec.strategy, len(loaders.classes))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_epoch(model, loaders.train, make_optimizer(model, "probe", cfg.finetune, "post_training"), "probe")
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"dense.weight", "dense.bias"}


def test_linear_fit_sets_the_head_to_the_read_out_fold_9_chose_and_leaves_the_backbone(ptbxl_corpus, weights,
                                                                                       tmp_path):
    """Restated with scikit-learn's own scaler and regression, C chosen by its macro AUROC on fold 9
    (the first of equals); the job's fold-10 probabilities are that pipeline's."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cfg = tiny(ptbxl_corpus, weights)
    spec = JobSpec("superdiagnostic", "linear_fit", 1.0, 0)
    result = run_job(cfg, spec, tmp_path / "job")
    loaders = Loaders(cfg, spec)
    model = build_finetune_model(cfg, "linear", len(loaders.classes))  # the pre-trained backbone, a fresh head

    def pooled(loader):
        rows = [(model.forward_head(model.forward_features(loader.dataset.to_device(b, "cpu")["signal"]),
                                    pre_logits=True).double().numpy(), b["target"].numpy()) for b in loader]
        return np.concatenate([x for x, _ in rows]), np.concatenate([y for _, y in rows])

    with torch.no_grad():
        model.eval()
        (train_x, train_y), (val_x, val_y), (test_x, test_y) = map(pooled, (loaders.train_in_order, loaders.val,
                                                                              loaders.test))

    def read_out(c, x):
        scores = np.empty((len(x), train_y.shape[1]))
        for k in range(train_y.shape[1]):
            if 0 < train_y[:, k].sum() < len(train_y):
                pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
                scores[:, k] = pipeline.fit(train_x, train_y[:, k]).predict_proba(x)[:, 1]
            else:
                scores[:, k] = train_y[:, k].mean()
        return scores

    def macro(y, scores):
        return np.mean([roc_auc_score(y[:, k], scores[:, k]) for k in range(y.shape[1]) if 0 < y[:, k].sum() < len(y)])

    grid = (0.01, 0.1, 1.0, 10.0)
    val = [macro(val_y, read_out(c, val_x)) for c in grid]
    chosen = grid[int(np.argmax(val))]
    assert result["linear_fit"] == {"c": chosen, "grid": list(grid), "val_macro_auroc": pytest.approx(max(val))}
    assert (result["selected_epoch"], result["epochs_trained"]) == (None, 0)
    saved = np.load(tmp_path / "job" / "test_scores.npy")
    assert np.array_equal(np.load(tmp_path / "job" / "test_targets.npy"), test_y)
    assert np.allclose(saved, read_out(chosen, test_x), atol=1e-4)
    tuned, _ = read_weights(tmp_path / "job" / "model.pth")
    pretrained, _ = read_weights(weights)
    assert all(torch.equal(tuned[k], pretrained[k]) for k in pretrained if not k.startswith("dense."))
    # shared, its card says how the head was made
    from ecgdist.finetune.export import export
    from ecgdist.model_card import finetuned_sections
    export(tmp_path / "job", tmp_path / "readout.pth")
    _, extra = read_weights(tmp_path / "readout.pth")
    assert f"(a logistic-regression read-out, C = {chosen}, validation macro AUROC {max(val):.4f})" in \
        finetuned_sections(extra, "lab/readout", "readout.pth")["sections"].replace("\n", " ")


def test_a_job_computes_with_the_cpus_its_sweep_asks_slurm_for(ptbxl_corpus, weights, monkeypatch):
    """``slurm.cpus_per_task`` threads, in the local queue as on SLURM (whose sandbox nodes bind no CPUs)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        for cpus in (3, 1):
            torch.set_num_threads(2)
            Loaders(tiny(ptbxl_corpus, weights, f"slurm.cpus_per_task={cpus}"), JobSpec("superdiagnostic", "baseline",
                                                                                      1.0, 0))
            assert torch.get_num_threads() == cpus
    finally:
        torch.set_num_threads(before)


def test_post_training_drops_paths_in_training_and_is_deterministic_in_eval(ptbxl_corpus, weights):
    cfg = tiny(ptbxl_corpus, weights)
    x = torch.randn(4, 12, 2500)
    model = build_finetune_model(cfg, "post_training", 5)
    model.train()
    assert not torch.allclose(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
    baseline = build_finetune_model(cfg, "baseline", 5).train()
    assert torch.equal(baseline(x), baseline(x))  # the baseline has no stochastic depth


def test_fold_10_labels_never_change_the_selected_model(ptbxl_corpus, weights, tmp_path):
    permuted = tmp_path / "permuted"
    shutil.copytree(ptbxl_corpus, permuted)
    table = read_metadata(permuted)
    test_rows = np.flatnonzero(table["fold"] == 10)
    with h5py.File(permuted / "shard-000000.h5", "r+") as f:
        labels = f["labels"].asstr()[:]
        labels[test_rows] = np.roll(labels[test_rows], 3)
        assert not np.array_equal(labels[test_rows], f["labels"].asstr()[test_rows])
        f["labels"][...] = labels
    manifest = read_manifest(permuted)  # a deliberate edit: the manifest records the shard's new bytes
    shard = permuted / "shard-000000.h5"
    manifest.shards[0] = ShardEntry(shard.name, manifest.shards[0].records, file_sha256(shard), shard.stat().st_size)
    write_manifest(permuted, manifest)
    write_index(permuted, manifest)  # tasks read labels and folds from the index, which merge rebuilds
    spec = JobSpec("all", "post_training", 1.0, 0)
    a = run_job(tiny(ptbxl_corpus, weights), spec, tmp_path / "a")
    b = run_job(tiny(permuted, weights), spec, tmp_path / "b")
    assert a["selected_epoch"] == b["selected_epoch"] and a["val_macro_auroc"] == b["val_macro_auroc"]
    assert not np.array_equal(np.load(tmp_path / "a/test_targets.npy"), np.load(tmp_path / "b/test_targets.npy"))
    assert np.array_equal(np.load(tmp_path / "a/test_scores.npy"), np.load(tmp_path / "b/test_scores.npy"))


def test_saved_predictions_reproduce_the_reported_metrics(ptbxl_corpus, weights, tmp_path):
    result = run_job(tiny(ptbxl_corpus, weights), JobSpec("superdiagnostic", "baseline", 1.0, 0), tmp_path)
    scores, targets = np.load(tmp_path / "test_scores.npy"), np.load(tmp_path / "test_targets.npy")
    classes = json.loads((tmp_path / "classes.json").read_text())
    scorable = [k for k in range(len(classes)) if 0 < targets[:, k].sum() < len(targets)]
    assert result["macro_auroc"] == pytest.approx(roc_auc_score(targets[:, scorable], scores[:, scorable]))
    assert result["classes_scored"] == len(scorable) and result["records"]["test"] == len(targets) == 14


def test_a_fine_tuned_model_lists_the_records_it_trained_on_for_the_next_fine_tune(ptbxl_corpus, weights, tmp_path):
    cfg = tiny(ptbxl_corpus, weights)
    spec = JobSpec("superdiagnostic", "baseline", 0.5, 0)  # half the training records: only those are listed
    run_job(cfg, spec, tmp_path / "first")
    provenance = read_weights(tmp_path / "first" / "model.pth")[1]["provenance"]
    loaders = Loaders(cfg, spec)
    trained = read_index(ptbxl_corpus).fingerprints(ptbxl_corpus)[loaders.trained_rows]
    assert 0 < len(loaders.trained_rows) < len(loaders.training_rows)
    assert np.array_equal(provenance["fingerprints"].numpy().view(np.uint64), np.unique(trained))
    assert provenance["complete"] is False and "carry no usable record" in provenance["note"]  # released format
    # Fine-tuned again on PTB-XL: folds 9 and 10 were never trained on, but what its backbone saw is unknown;
    # the records the first fine-tune trained on count as seen (a label-fraction row is marked for them).
    again = tiny(ptbxl_corpus, tmp_path / "first" / "model.pth")
    full = JobSpec("superdiagnostic", "baseline", 1.0, 0)
    rows = Loaders(again, full)
    _, known, backbone = starting_weights(again, full.strategy, ShardCorpus(ptbxl_corpus), "", rows.training_rows)
    assert known["status"] == UNKNOWN and f"none of the {len(np.unique(trained))} training records" in known["detail"]
    assert known["training_records_seen"] == len(loaders.trained_rows) and backbone["finetuned"]
    result = run_job(again, full, tmp_path / "second")
    listed = read_weights(tmp_path / "second" / "model.pth")[1]["provenance"]  # both fine-tunes' records
    second = read_index(ptbxl_corpus).fingerprints(ptbxl_corpus)[rows.trained_rows]
    assert np.array_equal(listed["fingerprints"].numpy().view(np.uint64), np.union1d(trained, second))
    assert listed["complete"] is False and result["pretraining_data"]["status"] == UNKNOWN


def test_a_job_reads_its_weights_file_once_and_starts_from_it(ptbxl_corpus, weights, tmp_path, monkeypatch):
    reads, real_load = [], torch.load

    def counting_load(f, *args, **kwargs):  # the real torch.load, counted
        reads.append(str(f))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    cfg = tiny(ptbxl_corpus, weights, "finetune.epochs=1")
    started = []

    def recording_optimizer(model, *args):  # the weights training starts from, then the real optimizer
        started.append({k: v.clone() for k, v in model.state_dict().items()})
        return make_optimizer(model, *args)

    monkeypatch.setattr("ecgdist.finetune.job.make_optimizer", recording_optimizer)
    result = run_job(cfg, JobSpec("superdiagnostic", "baseline", 1.0, 0), tmp_path)
    assert reads.count(str(weights)) == 1  # the check, the provenance and the model share one read
    file = real_load(weights, weights_only=True)["state_dict"]
    body = [k for k in file if not k.startswith("dense.")]
    assert all(torch.equal(started[0][k], file[k]) for k in body)  # training started from the file's weights
    assert result["pretraining_data"]["status"] == "unknown"


def test_job_interrupted_through_submitit_resumes_and_finishes(ptbxl_corpus, weights, tmp_path):
    import submitit

    cfg = tiny(ptbxl_corpus, weights, "finetune.epochs=8", "finetune.probe_epochs=2")  # ~1 s an epoch here
    job_dir = tmp_path / "job"
    executor = submitit.AutoExecutor(folder=str(tmp_path / "submitit"), cluster="local")
    executor.update_parameters(timeout_min=10)
    job = executor.submit(FinetuneJob(cfg, JobSpec("superdiagnostic", "post_training", 1.0, 0), str(job_dir)))
    deadline = time.time() + 120
    while time.time() < deadline:
        if (job_dir / "state.pt").exists() and torch.load(job_dir / "state.pt", weights_only=True)["progress"]["stage"] == 1:
            break
        time.sleep(0.2)
    # What SLURM does on preemption: the signal reaches the task itself (submitit's local
    # controller does not forward it, so it is sent to the task process directly).
    import psutil
    from submitit.local.local import LocalJobEnvironment

    (task,) = psutil.Process(job._process.pid).children(recursive=True)
    task.send_signal(LocalJobEnvironment._usr_sig())
    result = job.result()
    assert result["job"] == "superdiagnostic-post_training-f1-s0"
    history = torch.load(job_dir / "state.pt", weights_only=True)["progress"]["history"]  # plain data only
    assert result["resumes"] == 1  # the requeued run picked up the saved state
    assert [h["epoch"] for h in history] == list(range(1, 11))  # every epoch once: resumed, not restarted


def test_mtecg_classifier_fine_tunes_from_an_autoencoder_export_with_layer_decay_and_ema(ptbxl_corpus, tmp_path,
                                                                                          monkeypatch):
    import ecgdist.finetune.job as job
    from ecgdist.models.mae import MaskedAutoencoder
    from ecgdist.models.vit import EcgViT

    torch.manual_seed(0)
    mae = MaskedAutoencoder(EcgViT(num_samples=2500, width=192, depth=12, heads=3), decoder_width=64)
    save_weights(mae, tmp_path / "mae.pth")
    cfg = dataclasses.replace(tiny(ptbxl_corpus, tmp_path / "mae.pth", "finetune.epochs=1", "finetune.probe_epochs=1",
                                   "finetune.layer_decay=0.75", "finetune.ema_decay=0.9"),
                              model=ModelSection(name="mtecg_cls"))
    optimizers, averages, scored = [], [], []
    real_optimizer, real_predict, real_average = job.make_optimizer, job.predict, job.AveragedModel
    monkeypatch.setattr(job, "make_optimizer", lambda *a: optimizers.append(real_optimizer(*a)) or optimizers[-1])
    monkeypatch.setattr(job, "AveragedModel", lambda *a, **k: averages.append(real_average(*a, **k)) or averages[-1])
    monkeypatch.setattr(job, "predict", lambda model, loader: scored.append(model) or real_predict(model, loader))
    result = run_job(cfg, JobSpec("superdiagnostic", "post_training", 1.0, 0), tmp_path / "job")
    assert result["classes"] == 5 and 0.0 <= result["macro_auroc"] <= 1.0
    probe, full = optimizers
    assert [g["lr"] for g in probe.param_groups] == [cfg.finetune.probe_lr]  # the head alone, at the probe's rate
    layers = 12 + 2  # embeddings, 12 blocks, norm and head: layer i learns at lr x 0.75 ** (13 - i)
    assert sorted({round(g["lr"] / cfg.finetune.lr, 9) for g in full.param_groups}) == \
        sorted(round(0.75 ** (layers - 1 - i), 9) for i in range(layers))
    assert [id(m) for m in scored[:2]] == [id(a.module) for a in averages]  # fold 9 scored the EMA weights
    best = torch.load(tmp_path / "job" / "best.pt", weights_only=True)
    assert best["epoch"] == result["selected_epoch"]
    kept = torch.load(tmp_path / "job" / "model.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(kept[k], v) for k, v in best["state_dict"].items())  # fold 10 ran on the selected weights
    progress = torch.load(tmp_path / "job" / "state.pt", weights_only=True)["progress"]
    assert [h["stage"] for h in progress["history"]] == ["probe", "full"]


def test_a_model_trained_from_scratch_learns_every_layer_at_the_full_rate(ptbxl_corpus, weights):
    """Layer decay keeps pre-trained layers; a from-scratch row with it would handicap the comparison."""
    cfg = dataclasses.replace(tiny(ptbxl_corpus, weights, "finetune.layer_decay=0.75"),
                              model=ModelSection(name="mtecg_cls"))
    model = build_finetune_model(cfg, "scratch", 5)
    layers = 12 + 2
    for strategy, scales in (("scratch", {1.0}), ("baseline", {0.75 ** (layers - 1 - i) for i in range(layers)})):
        optimizer = make_optimizer(model, "full", cfg.finetune, strategy)
        assert {round(g["lr"] / cfg.finetune.lr, 9) for g in optimizer.param_groups} == {round(x, 9) for x in scales}


def test_the_probe_stage_trains_the_head_alone_under_the_backbones_weight_decay_rule(ptbxl_corpus, weights):
    """AdamW (MAE) never decays biases, in the probe stage as in the full one; Adam (released ECGFounder) decays all."""
    for optimizer_kind, expected in (("adamw", {"dense.weight": 0.05, "dense.bias": 0.0}),
                                     ("adam", {"dense.weight": 0.05, "dense.bias": 0.05})):
        cfg = tiny(ptbxl_corpus, weights, f"finetune.optimizer={optimizer_kind}", "finetune.weight_decay=0.05")
        model = build_finetune_model(cfg, "post_training", 5)
        optimizer = make_optimizer(model, "probe", cfg.finetune, "post_training")
        names = {id(p): n for n, p in model.named_parameters()}
        decay = {names[id(p)]: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
        assert decay == expected
        assert {g["lr"] for g in optimizer.param_groups} == {cfg.finetune.probe_lr}
        assert not any(p.requires_grad for n, p in model.named_parameters() if not n.startswith("dense."))


def test_a_head_of_the_task_shape_in_the_weights_is_reinitialised_unless_kept(ptbxl_corpus, tmp_path):
    torch.manual_seed(1)
    trained = build_finetune_model(tiny(ptbxl_corpus, "unused.pth"), "scratch", 5)  # scratch loads nothing
    with torch.no_grad():
        trained.dense.weight.fill_(0.5)  # a head of the same shape as the task's, clearly not an init
    save_weights(trained, tmp_path / "w.pth")
    fresh = build_finetune_model(tiny(ptbxl_corpus, tmp_path / "w.pth"), "baseline", 5)
    kept = build_finetune_model(tiny(ptbxl_corpus, tmp_path / "w.pth", "finetune.keep_head=true"), "baseline", 5)
    assert not torch.equal(fresh.dense.weight, trained.dense.weight)
    assert torch.equal(fresh.first_conv.conv.weight, trained.first_conv.conv.weight)  # the backbone loads
    assert torch.equal(kept.dense.weight, trained.dense.weight)


def test_baseline_is_the_released_recipe_and_match_epochs_gives_it_the_same_epochs(ptbxl_corpus, weights):
    from ecgdist.finetune.job import stages

    cfg = tiny(ptbxl_corpus, weights)
    model = build_finetune_model(cfg, "baseline", 5)
    optimizer = make_optimizer(model, "full", cfg.finetune, "baseline")
    assert isinstance(optimizer, torch.optim.Adam) and len(optimizer.param_groups) == 1  # no layer decay
    group = optimizer.param_groups[0]
    assert group["lr"] == cfg.finetune.lr and group["weight_decay"] == cfg.finetune.weight_decay
    assert len(group["params"]) == len(list(model.parameters()))  # biases decay too
    ft = cfg.finetune
    assert stages(ft, "baseline") == [("full", ft.epochs)]
    matched = tiny(ptbxl_corpus, weights, "finetune.match_epochs=true").finetune
    assert stages(matched, "baseline") == [("full", ft.epochs + ft.probe_epochs)]
    assert sum(n for _, n in stages(matched, "post_training")) == ft.epochs + ft.probe_epochs


def test_post_training_is_its_baseline_plus_probe_and_more_stochastic_depth(ptbxl_corpus, weights):
    """The MAE-style recipe a ViT backbone names: AdamW without decay on norms and biases, layer-wise
    LR decay, the baseline's own drop path, warm-up then cosine; post_training changes only the probe
    and the drop path."""
    from ecgdist.finetune.schedule import StageSchedule
    from ecgdist.models.drop_path import DropPath

    cfg = tiny(ptbxl_corpus, weights, "finetune.optimizer=adamw", "finetune.layer_decay=0.5",
               "finetune.baseline_drop_path=0.1", "finetune.drop_path=0.2", "finetune.schedule=cosine",
               "finetune.warmup_epochs=1", "finetune.weight_decay=0.05")
    rates = {}
    for strategy in ("baseline", "post_training"):
        model = build_finetune_model(cfg, strategy, 5)
        optimizer = make_optimizer(model, "full", cfg.finetune, strategy)
        assert isinstance(optimizer, torch.optim.AdamW)
        rates[strategy] = sorted((g["lr"], g["weight_decay"]) for g in optimizer.param_groups)
        rates[strategy + " drop path"] = max(m.rate for m in model.modules() if isinstance(m, DropPath))
    assert rates["baseline"] == rates["post_training"]  # the same optimizer groups and rates
    lrs = sorted({lr for lr, _ in rates["baseline"]})
    assert lrs[-1] == cfg.finetune.lr and lrs[0] == pytest.approx(cfg.finetune.lr * 0.5 ** (len(lrs) - 1))
    assert {wd for _, wd in rates["baseline"]} == {0.0, 0.05}  # norms and biases undecayed
    assert (rates["baseline drop path"], rates["post_training drop path"]) == (pytest.approx(0.1), pytest.approx(0.2))
    with pytest.raises(ConfigError, match="must exceed finetune.baseline_drop_path=0.2"):
        tiny(ptbxl_corpus, weights, "finetune.baseline_drop_path=0.2", "finetune.drop_path=0.2")
    # Warm-up over the first epoch's 4 steps, then cosine to 0 at the stage's last step.
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = StageSchedule(optimizer, cfg.finetune, epochs=3, steps_per_epoch=4)
    seen = [optimizer.param_groups[0]["lr"]]
    for _ in range(12):
        optimizer.step()
        schedule.after_step()
        seen.append(optimizer.param_groups[0]["lr"])
    assert seen[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0]) and seen[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(seen[4:], seen[5:])) and seen[12] == pytest.approx(0.0, abs=1e-9)


def test_training_batches_mix_shards_in_a_fresh_order_each_epoch(shared_data, tmp_path, weights):
    from conftest import build_corpus

    corpus = build_corpus("ptbxl", shared_data / "ptbxl-mini", tmp_path / "corpus", "--shard-size", "10")
    cfg = tiny(corpus, weights)
    loaders = Loaders(cfg, JobSpec("superdiagnostic", "baseline", 1.0, 0))
    shard_of = loaders.train.dataset.shards_of()
    epochs = []
    for epoch in (0, 1):
        loaders.train_sampler.set_epoch(epoch)
        epochs.append([batch["index"].numpy() for batch in loaders.train])
    full = [b for b in epochs[0] if len(b) == cfg.finetune.batch_size]
    assert full and min(len(np.unique(shard_of[b])) for b in full) >= 3
    assert not np.array_equal(np.concatenate(epochs[0]), np.concatenate(epochs[1]))


def test_best_weights_are_written_only_when_they_improve(tmp_path):
    from ecgdist.finetune.progress import BEST, JobProgress, keep_if_best

    model, progress, writes = torch.nn.Linear(3, 2), JobProgress(), []
    for auroc in (0.6, 0.55, float("nan"), 0.7, 0.7):
        progress.history.append({"val_macro_auroc": auroc})
        before = (tmp_path / BEST).stat().st_mtime_ns if (tmp_path / BEST).exists() else None
        with torch.no_grad():
            model.weight.fill_(auroc)
        keep_if_best(tmp_path, progress, model, auroc)
        writes.append((tmp_path / BEST).stat().st_mtime_ns != before)
        time.sleep(0.01)
    assert writes == [True, False, False, True, False]
    best = torch.load(tmp_path / BEST, weights_only=True)
    assert (best["epoch"], best["val_macro_auroc"]) == (4, 0.7) == (progress.best_epoch, progress.best_auroc)
    assert torch.all(best["state_dict"]["weight"] == 0.7)


def test_progress_restores_the_model_and_rng_streams_cuda_included(tmp_path, monkeypatch):
    """No GPU here: torch.cuda's RNG calls are stood in for, to show the CUDA streams are saved and restored."""
    from ecgdist.finetune.progress import JobProgress, resume_progress, save_progress

    cuda_streams = [torch.tensor([1, 2, 3], dtype=torch.uint8), torch.tensor([4, 5], dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: cuda_streams)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.extend)
    model = torch.nn.Linear(3, 2)
    torch.manual_seed(3)
    save_progress(tmp_path, JobProgress(stage=1, epoch=2, history=[{"epoch": 1}, {"epoch": 2}]), model)
    expected_draw = torch.rand(4)
    fresh = torch.nn.Linear(3, 2)
    progress, saved = resume_progress(tmp_path, fresh, "cpu")
    assert (progress.stage, progress.epoch, progress.global_epoch, progress.resumes) == (1, 2, 2, 1)
    assert torch.equal(torch.rand(4), expected_draw)  # the CPU stream continues where it was saved
    assert [t.tolist() for t in restored] == [[1, 2, 3], [4, 5]]
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    assert saved["optimizer"] is None and torch.load(tmp_path / "state.pt", weights_only=True)["progress"]["epoch"] == 2


def test_a_sweep_job_checks_its_weights_checksum_on_the_bytes_it_loads(ptbxl_corpus, weights, tmp_path, monkeypatch):
    import builtins
    import io

    from ecgdist.finetune.job import WEIGHTS_RECORD

    job_dir = tmp_path / "sweep" / "jobs" / "superdiagnostic-baseline-f1-s0"
    job_dir.parent.mkdir(parents=True)
    record = {"net1d": {"weights": str(weights), "sha256": file_sha256(weights)}}
    (tmp_path / "sweep" / WEIGHTS_RECORD).write_text(json.dumps(record))
    opened, real_open = [], builtins.open

    def counting_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    for module in (builtins, io):  # open() and Path.read_bytes (io.open)
        monkeypatch.setattr(module, "open", counting_open)
    cfg = tiny(ptbxl_corpus, weights, "finetune.epochs=1", "finetune.probe_epochs=1")
    run_job(cfg, JobSpec("superdiagnostic", "baseline", 1.0, 0), job_dir)
    assert opened.count(str(weights)) == 1  # checksummed and loaded from one read
    monkeypatch.undo()
    record["net1d"]["sha256"] = "0" * 64
    (tmp_path / "sweep" / WEIGHTS_RECORD).write_text(json.dumps(record))
    shutil.rmtree(job_dir)
    with pytest.raises(ConfigError, match="changed since the sweep was submitted"):
        run_job(cfg, JobSpec("superdiagnostic", "baseline", 1.0, 0), job_dir)
