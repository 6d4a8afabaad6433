"""``python -m ecgdist.models NAME [key=value ...] [--weights REF]``: a model's size and shapes.

``--weights`` (a file or ``hf://OWNER/REPO/FILE[@REVISION]``) loads the weights strictly into
the model first (``model.num_classes`` sets its head). The last line is one JSON object
(params, input, output, per-stage shapes, and the weights loaded).
"""

from __future__ import annotations

import argparse
import json

import torch

from ecgdist.config import ConfigError, ModelSection, load_config
from ecgdist.models import build_model, count_parameters
from ecgdist.models.pretrained import CheckpointMismatchError, UnreadableWeights, load_pretrained
from ecgdist.safe_load import PLAIN_DATA_TYPES


def stage_shapes(model: torch.nn.Module, x: torch.Tensor) -> list[dict]:
    """Output shape of each stage (Net1D) or block (ViT), recorded with forward hooks."""
    stages = getattr(model, "stage_list", None) or getattr(model, "encoder", model).blocks
    shapes: list[dict] = []
    hooks = [stage.register_forward_hook(
        lambda mod, inp, out, i=i: shapes.append({"stage": i, "shape": list(out.shape),
                                                  "params": count_parameters(mod)}))
        for i, stage in enumerate(stages)]
    with torch.no_grad():
        out = model(x)
    for hook in hooks:
        hook.remove()
    return shapes, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=["net1d", "mtecg_mae", "mtecg_cls"])
    parser.add_argument("overrides", nargs="*", help="model.* keys, e.g. num_classes=150 size=small")
    parser.add_argument("--leads", type=int, default=12)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--weights", help="load these weights strictly: a file or hf://OWNER/REPO/FILE[@REVISION]")
    parser.add_argument("--trust-type", action="append", default=[], choices=sorted(PLAIN_DATA_TYPES),
                        help="a class the weights file may hold besides tensors (plain data you trust)")
    args = parser.parse_args(argv)
    try:
        section = load_config(ModelSection, None, [f"name={args.name}", *args.overrides])
    except ConfigError as error:
        parser.error(str(error))
    model = build_model(section, args.leads, args.samples, num_classes=section.num_classes or 150).eval()
    if args.weights:
        try:
            fresh = load_pretrained(model, args.weights, trusted_types=args.trust_type)
        except (FileNotFoundError, UnreadableWeights, CheckpointMismatchError) as error:
            raise SystemExit(f"error: {error}")
        print(f"loaded {args.weights}" + (f" (left fresh: {', '.join(fresh)})" if fresh else " (every tensor)"))
    x = torch.randn(1, args.leads, args.samples)
    shapes, out = stage_shapes(model, x)
    out_shape = [list(t.shape) for t in out] if isinstance(out, tuple) else list(out.shape)
    summary = {"model": args.name, "params": count_parameters(model),
               "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
               "input": list(x.shape), "output": out_shape, "stages": shapes, "weights": args.weights}
    print(model.__class__.__name__)
    for s in shapes:
        print(f"  stage {s['stage']:2d}: out {s['shape']}  params {s['params']:,}")
    print(f"parameters: {summary['params']:,}  input {summary['input']}  output {summary['output']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
