"""``python -m ecgdist.submit``: the one front end for both stages on a cluster.

    python -m ecgdist.submit pretrain CONFIG [key=value ...] [--wait] [--dry-run]
    python -m ecgdist.submit finetune CONFIG [key=value ...] [--cluster auto|slurm|local|debug] [--wait] [--dry-run]
    python -m ecgdist.submit status RUN_DIR       (a pre-training run or a fine-tune sweep)
    python -m ecgdist.submit collect SWEEP_DIR

``pretrain`` submits slurm/pretrain.sh with ``sbatch``, its resources taken from the
config's ``slurm`` section; ``finetune`` submits a sweep of submitit jobs. Both check the
config and the files it names before anything is submitted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ecgdist.config import ConfigError, FinetuneConfig, PretrainConfig, load_config, resolve_path
from ecgdist.finetune.sweep import JobsFailed, publish_results, status, submit_finetune
from ecgdist.pretrain.submission import print_status, submit_pretrain


def is_sweep(run_dir: Path) -> bool:
    config = run_dir / "config.yaml"
    if not config.exists():
        raise ConfigError(f"{run_dir} holds no config.yaml: not a run or sweep folder of ecgdist")
    return "sweep" in OmegaConf.load(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgdist.submit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pretrain", help="submit slurm/pretrain.sh with the config's slurm resources")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--wait", action="store_true", help="block until the job ends, then print its status")
    p.add_argument("--dry-run", action="store_true", help="check everything, print the sbatch line, submit nothing")
    p = sub.add_parser("finetune", help="submit a fine-tune sweep")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--cluster", choices=["auto", "slurm", "local", "debug"], default="auto")
    p.add_argument("--wait", action="store_true", help="block until done and print the results table")
    p.add_argument("--dry-run", action="store_true", help="check everything, list the jobs, submit nothing")
    sub.add_parser("status", help="a pre-training run or a sweep").add_argument("run_dir", type=Path)
    sub.add_parser("collect", help="a sweep's results table").add_argument("run_dir", type=Path)
    args, rest = parser.parse_known_args(argv)  # overrides may also follow --cluster / --wait
    stray = [item for item in rest if item.startswith("-") or "=" not in item]
    if stray or (rest and args.command not in ("pretrain", "finetune")):
        parser.error(f"unrecognized arguments: {' '.join(stray or rest)}")
    try:
        if args.command == "pretrain":
            overrides = [*args.overrides, *rest]
            cfg = load_config(PretrainConfig, resolve_path(args.config), overrides)
            return submit_pretrain(cfg, args.config, overrides, args.wait, args.dry_run)
        if args.command == "finetune":
            overrides = [*args.overrides, *rest]
            submit_finetune(load_config(FinetuneConfig, resolve_path(args.config), overrides), args.cluster, args.wait,
                            args.dry_run)
        elif args.command == "status":
            status(args.run_dir) if is_sweep(args.run_dir) else print_status(args.run_dir)
        elif is_sweep(args.run_dir):
            publish_results(load_config(FinetuneConfig, args.run_dir / "config.yaml"), args.run_dir)
        else:
            raise ConfigError(f"{args.run_dir} is a pre-training run, not a sweep: it has no results table")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except JobsFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
