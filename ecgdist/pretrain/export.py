"""``python -m ecgdist.export RUN_DIR OUT``: consolidated fp32 weights from any ZeRO stage.

Reads the newest usable checkpoint of a pre-training run (the same choice a resuming
job makes), gathers the ZeRO partitions offline with DeepSpeed's own converter, and
writes the released-checkpoint layout ({"state_dict": ...}) plus the resolved config,
the label vocabulary and the corpus recipe, so a fine-tune can check what it loads.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import torch

from ecgdist.pretrain.checkpoint import Checkpointer


def consolidated_state_dict(checkpoints: Path, tag: str) -> dict[str, torch.Tensor]:
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if torch.cuda.is_available() else "cpu")
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    state = get_fp32_state_dict_from_zero_checkpoint(str(checkpoints), tag=tag)
    return {k: v.float().contiguous() if v.is_floating_point() else v for k, v in state.items()}


def export(run_dir: str | Path, out: str | Path) -> dict:
    checkpoints = Path(run_dir) / "checkpoints"
    tag = Checkpointer(checkpoints).newest_usable()
    if tag is None:
        raise FileNotFoundError(f"no complete, uncorrupted checkpoint under {checkpoints}")
    # Rank 0's model-states file holds the client state (its name differs under ZeRO-3).
    states = [checkpoints / tag / name for name in ("mp_rank_00_model_states.pt",
                                                     "zero_pp_rank_0_mp_rank_00_model_states.pt")]
    client = torch.load(next(p for p in states if p.exists()), map_location="cpu", weights_only=False)
    blob = {"state_dict": consolidated_state_dict(checkpoints, tag), "config": client["config"],
            "labels": client["labels"], "recipe": client["recipe"], "step": client["step"]}
    tmp = Path(f"{out}.tmp")
    torch.save(blob, tmp)
    os.replace(tmp, out)
    return {"tag": tag, "step": client["step"], "tensors": len(blob["state_dict"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgdist.export", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        result = export(args.run_dir, args.out)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"exported {result['tag']} ({result['tensors']} tensors, step {result['step']}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
