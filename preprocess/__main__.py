"""``python -m preprocess``: raw ECG corpora to a shard corpus.

    python -m preprocess SOURCE INPUT OUTPUT [--rate 500] [--seconds 10] [--filter none|ecgfounder]
                         [--workers N] [--shard-size N] [--slice I/N] [--dtype float16|float32]
                         [--seed N] [--listing LISTING]
    python -m preprocess wfdb INPUT OUTPUT --labels TABLE.csv     (record,labels[,age,sex,patient_id])
    python -m preprocess list SOURCE INPUT LISTING [--rate 500] [--labels TABLE.csv]   (walk once for an array)
    python -m preprocess merge OUTPUT
    python -m preprocess inspect OUTPUT [--json] [--no-verify]
    python -m preprocess verify OUTPUT               (every shard against the manifest's sizes and sha256)
    python -m preprocess fingerprint OUTPUT INPUT   (content fingerprints for a corpus made before them)
    python -m preprocess download ptbxl|physionet2021|mimic-iv-ecg|code15 DIR [--records N | --parts N]
                         [--rate 500|100|both (ptbxl)] [--base-url URL]
    python -m preprocess simulate ptbxl DIR [--records N]     (synthetic ECGs for offline demos)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ecgdist.data.shards import Recipe
from preprocess import pipeline
from preprocess.listing import shared_listing, walk, write_listing
from preprocess.record import SourceError
from preprocess.sources import SOURCES
from preprocess.summary import corpus_summary, format_summary

EXIT_DEFERRED = 3  # merge: other slices are still running (slurm/preprocess.sh tells this from a failure)


def parse_slice(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--slice {text!r} is not I/N") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--slice {text}: need 0 <= I < N")
    return index, count


def positive(kind):
    """An argparse type: a number above zero, checked before anything is written."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text} must be a positive number")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m preprocess", description="Raw ECG corpora to HDF5 shards.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SOURCES:
        p = sub.add_parser(name, help=f"shard a {name} corpus")
        p.add_argument("input", type=Path)
        p.add_argument("output", type=Path)
        p.add_argument("--rate", type=positive(int), default=500, help="target sampling rate in Hz")
        p.add_argument("--seconds", type=positive(float), default=10.0, help="window length")
        p.add_argument("--filter", choices=["none", "ecgfounder"], default="none")
        p.add_argument("--dtype", choices=["float16", "float32"], default="float16")
        p.add_argument("--workers", type=positive(int), default=1)
        p.add_argument("--shard-size", type=positive(int), default=1000, help="input records per shard")
        p.add_argument("--slice", type=parse_slice, default=(0, 1), help="I/N: this task's share of a job array")
        p.add_argument("--seed", type=int, default=0, help="seed of the random placement of records into shards")
        p.add_argument("--listing", type=Path, default=None,
                       help="read the records to shard from this listing (python -m preprocess list); "
                            "made here first if missing")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        if name == "wfdb":
            p.add_argument("--labels", type=Path, default=None,
                           help="CSV of record,labels[,age,sex,patient_id]: each record's meta data")
    p = sub.add_parser("list", help="list a source's records once, for every task of a job array")
    p.add_argument("source", choices=sorted(SOURCES))
    p.add_argument("input", type=Path)
    p.add_argument("listing", type=Path)
    p.add_argument("--rate", type=positive(int), default=500, help="the --rate the shards will be made at")
    p.add_argument("--labels", type=Path, default=None, help="wfdb: a labels table (see python -m preprocess wfdb -h)")
    p = sub.add_parser("merge", help="join the slices of a job array into one manifest")
    p.add_argument("output", type=Path)
    p = sub.add_parser("inspect", help="records, shards, rejections, labels and recipe; every shard verified")
    p.add_argument("output", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-verify", action="store_true", help="skip the shard checksums (they read every byte)")
    p = sub.add_parser("verify", help="check every shard against the manifest: missing, truncated, modified")
    p.add_argument("output", type=Path)
    p = sub.add_parser("download", help="fetch an open corpus in its published layout, resumable and verified")
    p.add_argument("dataset", choices=["ptbxl", "physionet2021", "mimic-iv-ecg", "code15"])
    p.add_argument("output", type=Path)
    p.add_argument("--records", type=positive(int), default=None, help="only the first N records (default: all)")
    p.add_argument("--parts", type=positive(int), default=None, help="code15: only the first N of its 18 parts")
    p.add_argument("--rate", choices=["500", "100", "both"], default="500", help="ptbxl: which records")
    p.add_argument("--base-url", default=None, help="a mirror of the publisher's folder (Zenodo record for code15)")
    p.add_argument("--quiet", action="store_true")
    p = sub.add_parser("fingerprint", help="add content fingerprints to a corpus written before they existed")
    p.add_argument("output", type=Path)
    p.add_argument("input", type=Path, help="the folder the corpus was made from")
    p.add_argument("--quiet", action="store_true")
    p = sub.add_parser("split", help="make benchmark folds (1-8 train, 9 validation, 10 test) for a corpus without "
                                     "its own: grouped by patient, stratified, seeded; once, before pre-training")
    p.add_argument("output", type=Path)
    p.add_argument("--seed", type=int, required=True)
    p = sub.add_parser("simulate", help="write a SIMULATED 12-lead corpus in PTB-XL layout (offline demos)")
    p.add_argument("dataset", choices=["ptbxl"])
    p.add_argument("output", type=Path)
    p.add_argument("--records", type=int, default=600)
    return parser


def run_download(args) -> int:
    from preprocess import download

    base = args.base_url or download.SOURCES[args.dataset]
    if args.parts and args.dataset != "code15" or args.records and args.dataset == "code15":
        print(f"error: {args.dataset} takes {'--parts' if args.dataset == 'code15' else '--records'}", file=sys.stderr)
        return 2
    fetch = {"ptbxl": lambda: download.download_ptbxl(
                 args.output, args.records, base, ("500", "100") if args.rate == "both" else (args.rate,),
                 progress=not args.quiet),
             "physionet2021": lambda: download.download_physionet2021(args.output, args.records, base, not args.quiet),
             "mimic-iv-ecg": lambda: download.download_mimic_iv_ecg(args.output, args.records, base, not args.quiet),
             "code15": lambda: download.download_code15(args.output, args.parts, base, not args.quiet)}
    try:
        report = fetch[args.dataset]()
    except download.DownloadError as error:
        print(f"error: download failed: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a full disk, an unwritable folder
        print(f"error: download failed: {error.strerror or error} ({error.filename or args.output})", file=sys.stderr)
        return 1
    print(f"{args.output}: {len(report.fetched)} files fetched, {len(report.verified)} already verified, "
          f"{len(report.missing)} not on the server, {len(report.corrupt)} corrupt (discarded), "
          f"{len(report.unverified)} without a published checksum (unverified)")
    for name in report.corrupt:
        print(f"  checksum mismatch: {name}", file=sys.stderr)
    print(f"next: python -m preprocess {args.dataset} {args.output} OUTPUT")
    return 1 if report.corrupt else 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "download":
        return run_download(args)
    if args.command == "simulate":
        from preprocess.simulate import simulate_ptbxl
        print(f"wrote {args.records} SIMULATED records to {simulate_ptbxl(args.output, args.records)}")
        return 0
    try:
        if args.command in ("inspect", "verify"):
            summary = corpus_summary(args.output, verify=args.command == "verify" or not args.no_verify)
            if args.command == "verify":
                print("\n".join(f"CORRUPT {p}" for p in summary["shard_problems"])
                      or f"{args.output}: all {summary['shards']} shards match the manifest (size and sha256)")
            else:
                print(json.dumps(summary) if args.json else format_summary(summary))
            return 1 if summary["shard_problems"] else 0
        if args.command == "fingerprint":
            from preprocess.fingerprint import add_fingerprints
            print(f"{args.output}: fingerprints of {add_fingerprints(args.output, args.input, not args.quiet)} "
                  "records written to index/fingerprint.npy")
            return 0
        if args.command == "split":
            from preprocess.split import format_split, split_corpus
            print(format_split(args.output, *split_corpus(args.output, args.seed)))
            return 0
        if args.command == "list":
            listing = walk(args.source, args.input, args.rate, args.labels)
            write_listing(args.listing, listing)
            print(f"{args.listing}: {len(listing)} {args.source} records listed, {len(listing.rejections)} rejected")
            return 0
        if args.command == "merge":
            pipeline.merge(args.output)
        else:
            recipe = Recipe(args.command, args.rate, args.seconds, args.filter, args.dtype)
            labels = getattr(args, "labels", None)
            if args.listing:
                listing = shared_listing(args.listing, args.command, args.input, args.rate, labels)
            else:
                listing = walk(args.command, args.input, args.rate, labels)  # before anything is written
            index, count = args.slice
            manifest = pipeline.run(listing, args.output, recipe, args.workers, args.shard_size, index, count,
                                    args.seed, progress=not args.quiet)
            if manifest is None:
                print(f"slice {index}/{count} done; run `python -m preprocess merge {args.output}` after all slices")
                return 0
        print(format_summary(corpus_summary(args.output)))
    except pipeline.ChunksUnfinished as error:
        print(f"merge deferred: {error}", file=sys.stderr)
        return EXIT_DEFERRED
    except (SourceError, ValueError) as error:  # bad input, an invalid manifest
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenProcessPool:
        print("error: a worker process died (killed, or out of memory?); rerun: finished shards are kept",
              file=sys.stderr)
        return 1
    except OSError as error:  # disk full, permissions, a file where a folder should be: one line, not a traceback
        print(f"error: {error.strerror or error} ({error.filename or args.output})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
