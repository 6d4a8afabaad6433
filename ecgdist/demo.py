"""``make demo``: the whole pipeline on one machine, each stage the command a user would type.

1. data: ``DEMO_DATA`` (a full or partial PTB-XL copy) when set, else the first
   ``DEMO_RECORDS`` records downloaded from PhysioNet; offline, a built-in SIMULATED
   corpus, and every output says so;
2. preprocess it into shards;
3. pre-train a small Net1D and a small MTECG autoencoder with DeepSpeed on 2 ranks
   (``sbatch -N 2 slurm/pretrain.sh`` when the local SLURM sandbox runs, else torchrun),
   leaving out every record of PTB-XL's folds 9 and 10, which the fine-tunes are judged on,
   and probing what each representation is worth halfway and at the end (a linear read-out
   fitted on folds 1-8, scored on fold 9);
4. export both and fine-tune each on PTB-XL, baseline against post-training, as one
   submitit sweep with a backbone column (SLURM or local processes);
5. print the results table, the probe values, predictions for two records and where TensorBoard looks.

Settings (environment): DEMO_DIR (demo), DEMO_DATA, DEMO_RECORDS (400), DEMO_STEPS (200) of
pre-training, DEMO_EPOCHS of fine-tuning in each stage (the config's 3, and 2 of linear probing).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def sh(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    print("$ " + " ".join(shlex.quote(str(a)) for a in args), flush=True)
    return subprocess.run([str(a) for a in args], cwd=REPO, env={**os.environ, **(env or {})}, check=check)


def slurm_sandbox_running() -> bool:
    return shutil.which("sbatch") is not None and subprocess.run(
        ["scontrol", "ping"], capture_output=True).returncode == 0


def get_data(root: Path) -> tuple[Path, bool]:
    """A PTB-XL folder, and whether it is simulated."""
    if os.environ.get("DEMO_DATA"):
        return Path(os.environ["DEMO_DATA"]), False
    real = root / "data" / "ptbxl"
    records = os.environ.get("DEMO_RECORDS", "400")
    if sh(PYTHON, "-m", "preprocess", "download", "ptbxl", real, "--records", records, check=False).returncode == 0:
        return real, False
    say("PhysioNet cannot be reached (offline?) and DEMO_DATA is not set: "
        "running on a built-in SIMULATED 12-lead corpus. Its numbers say nothing about real ECGs.")
    simulated = root / "data" / "simulated"
    if not (simulated / "SIMULATED").exists():
        sh(PYTHON, "-m", "preprocess", "simulate", "ptbxl", simulated, "--records", "600")
    return simulated, True


def pretrain(config: str, corpus: Path, run_dir: Path, steps: str, use_slurm: bool) -> None:
    overrides = [f"data.corpus={corpus}", f"data.exclude_from={corpus}", f"run.dir={run_dir}", f"train.steps={steps}",
                 f"checkpoint.save_every_steps={steps}", "train.log_every_steps=20",
                 f"probe.every_steps={max(1, int(steps) // 2)}",
                 f"train.val_every_steps={max(1, int(steps) // 4)}", f"train.image_every_steps={max(1, int(steps) // 4)}"]
    if use_slurm:
        run_dir.parent.mkdir(parents=True, exist_ok=True)  # sbatch opens the log file before the job starts
        log = f"{run_dir}.slurm.out"
        if sh("sbatch", "--wait", "-N", "2", "-o", log, "slurm/pretrain.sh", config, *overrides,
              env={"ECGDIST_PYTHON": PYTHON}, check=False).returncode:
            raise SystemExit(f"pre-training job failed: see {log}")
    else:
        sh(PYTHON, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "ecgdist.pretrain", config,
           *overrides, env={"OMP_NUM_THREADS": "1"})


def probe_lines(runs: Path, names: tuple[str, ...]) -> list[str]:
    """Each run's probe values (its probe.jsonl, docs/probes.md: the demo reads outputs, as a user
    would, and imports no stage), one line per probed step."""
    lines = []
    for name in names:
        for line in (runs / name / "probe.jsonl").read_text().splitlines():
            entry = json.loads(line)
            shown = ", ".join(f"{tag.removeprefix('probe/ptbxl/')} {value:.3f}"
                              for tag, value in entry["values"].items() if tag.endswith("auroc"))
            lines.append(f"   {name} step {entry['step']}: {shown} ({entry['seconds']:.1f} s)")
    return lines


def main() -> int:
    started = time.time()
    root = Path(os.environ.get("DEMO_DIR", "demo")).resolve()
    steps = os.environ.get("DEMO_STEPS", "200")
    use_slurm = os.environ.get("DEMO_SLURM") != "0" and slurm_sandbox_running()  # DEMO_SLURM=0: local anyway
    say(f"ecgdist demo in {root} ({'local SLURM sandbox' if use_slurm else 'local processes'}, CPU)")
    data, simulated = get_data(root)
    corpus = root / "corpus" / ("simulated" if simulated else "ptbxl")

    say("1/4 preprocess: raw records to HDF5 shards")
    sh(PYTHON, "-m", "preprocess", "ptbxl", data, corpus, "--workers", "2", "--quiet")

    say("2/4 pre-train Net1D (supervised) and MTECG (masked autoencoder) with DeepSpeed on 2 ranks")
    runs = root / "runs"
    pretrain("configs/pretrain/ecgfounder_tiny.yaml", corpus, runs / "net1d", steps, use_slurm)
    pretrain("configs/pretrain/mtecg_tiny.yaml", corpus, runs / "mtecg", steps, use_slurm)
    weights = {name: root / "weights" / f"{name}.safetensors" for name in ("net1d", "mtecg")}
    for name, path in weights.items():
        sh(PYTHON, "-m", "ecgdist.export", runs / name, path)

    say("3/4 fine-tune both pre-trained models on PTB-XL: baseline against post-training (submitit)")
    sweep = runs / "finetune"
    epochs = os.environ.get("DEMO_EPOCHS")
    sh(PYTHON, "-m", "ecgdist.submit", "finetune", "configs/finetune/ptbxl_tiny_two_backbones.yaml",
       f"data.corpus={corpus}", f"run.dir={sweep}", f"sweep.backbones.0.weights={weights['net1d']}",
       f"sweep.backbones.1.weights={weights['mtecg']}",
       *([f"finetune.epochs={epochs}", f"finetune.probe_epochs={epochs}"] if epochs else []),
       "--cluster", "slurm" if use_slurm else "local", "--wait")

    say("4/4 classify two records with the fine-tuned post-training Net1D")
    model = sweep / "jobs" / "net1d-superdiagnostic-post_training-f1-s0" / "model.pth"
    records = sorted(data.rglob("*.hea"))[:2]
    sh(PYTHON, "-m", "ecgdist.predict", model, *[str(r) for r in records])

    say(f"done in {(time.time() - started) / 60:.1f} min")
    if simulated:
        print("   ** everything above ran on SIMULATED ECGs **")
    print(f"   results table: {sweep / 'results.md'}")
    print("   probes during pre-training (macro AUROC of a linear read-out, PTB-XL fold 9):")
    print("\n".join(probe_lines(runs, tuple(weights))))
    print(f"   TensorBoard:   tensorboard --logdir {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
