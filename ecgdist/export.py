"""``python -m ecgdist.export DIR OUT``: a model as a file to share, from a pre-training run or a fine-tune job.

DIR is a pre-training run's folder (consolidated weights of a checkpoint and their
provenance: ecgdist/pretrain/export.py) or a finished fine-tune job's folder (its selected
model and its results-table row: ecgdist/finetune/export.py). ``--onnx`` adds an ONNX graph;
``--push OWNER/REPO`` uploads the files with a model card (ecgdist/model_card.py).
"""

import argparse
import logging
import sys
from pathlib import Path

import ecgdist.finetune.export as finetune_export
import ecgdist.pretrain.export as pretrain_export
from ecgdist.model_card import model_card
from ecgdist.models.hub import publish
from ecgdist.models.onnx_export import export_onnx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgdist.export", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a pre-training run's folder, or a finished fine-tune job's")
    parser.add_argument("out", help="OUT.safetensors (safetensors), or any other name (torch.save)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--best", action="store_true", help="the checkpoint with the best checkpoint.keep_best value")
    which.add_argument("--step", type=int, help="the checkpoint of this step")
    parser.add_argument("--onnx", type=Path, help="also write the model as ONNX here (dynamic batch)")
    parser.add_argument("--push", metavar="OWNER/REPO", help="upload the export (and the ONNX file) with a model card")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    stage = finetune_export if finetune_export.is_job(args.run_dir) else pretrain_export
    out = Path(args.out)
    try:
        print(stage.export(args.run_dir, out, args.best, args.step))
        if args.onnx or args.push:
            model, cfg, extra = stage.exported_model(out)  # read back: what was written is what is shared
        if args.onnx:
            onnx = export_onnx(model, args.onnx, len(cfg.data.leads), cfg.data.crop_samples)
            print(f"wrote {args.onnx} (input signal, output {onnx['output']}; onnxruntime vs torch "
                  f"{onnx['max_difference']:.1e})")
        if args.push:
            files = {out.name: out, "README.md": model_card(extra, model, args.push, out.name).encode(),
                     **({args.onnx.name: args.onnx} if args.onnx else {})}
            url = publish(args.push, files, f"ecgdist export of {Path(args.run_dir).name}")
            print(f"pushed {', '.join(files)} to {args.push} ({url}): load it as hf://{args.push}/{out.name}")
    except (FileNotFoundError, ValueError) as error:  # ConfigError (an unreadable config.yaml) too
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
