"""DeepSpeed checkpoints that resume: every rank saves, a marker says a checkpoint is whole.

Layout under ``run_dir/checkpoints``: one folder per save, ``step-00000100``, holding
DeepSpeed's files (model and ZeRO optimizer partitions, scheduler, client state), one
``rank-NNNNN.pt`` per rank (its RNG state) and, written last by rank 0 after every rank
finished, ``complete.json`` with the sha256 of every file. A folder without that marker
is a save that crashed and is ignored; a folder whose files no longer match their
checksums is corrupt: resuming then falls back to the one before, and says so. Every
rank verifies the same files, so all ranks pick the same checkpoint without talking.
A checkpoint written by a different number of ranks is loaded through DeepSpeed's
universal format (``universal_checkpoint``).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ecgdist.files import atomic_write_text, file_sha256
from ecgdist.pretrain.universal_checkpoint import PREFIX, convert, partitioned, universal_tag, wait_for_conversion
from ecgdist.safe_load import load

log = logging.getLogger(__name__)
MARKER = "complete.json"


def step_tag(step: int) -> str:
    return f"step-{step:08d}"


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


@dataclass(frozen=True)
class Resume:
    """Which checkpoint a starting job resumes from, and how DeepSpeed must load it."""

    tag: str
    load_tag: str  # the tag itself, or its universal copy when the rank count changed
    saved_world_size: int

    @property
    def universal(self) -> bool:
        return self.load_tag != self.tag


class Checkpointer:
    """Args:
        folder: where step folders go.
        save_every_steps, save_every_minutes: 0 switches either trigger off.
        keep_last: complete checkpoints kept (at least 2).
        rank: this process's rank (0 writes markers and prunes).
    """

    def __init__(self, folder: Path, save_every_steps: int = 0, save_every_minutes: float = 0.0,
                 keep_last: int = 2, rank: int = 0) -> None:
        self.folder = Path(folder)
        self.save_every_steps, self.save_every_minutes = save_every_steps, save_every_minutes
        self.keep_last, self.rank = keep_last, rank
        self.last_save_time = time.monotonic()
        self.corrupt: set[str] = set()  # tags found corrupt at start: never kept in place of good ones

    def due(self, step: int, last_step: bool) -> bool:
        """Whether a save is due after ``step``; the minutes clock is rank 0's, shared by the caller."""
        by_steps = self.save_every_steps > 0 and step % self.save_every_steps == 0
        by_time = self.save_every_minutes > 0 and time.monotonic() - self.last_save_time >= 60 * self.save_every_minutes
        return last_step or by_steps or by_time

    def save(self, engine, step: int, client_state: dict) -> Path:
        """Collective: every rank must call it. A folder of the same step left by a crashed
        attempt is cleared first; DeepSpeed's ``latest`` pointer is written last, after the marker."""
        tag = step_tag(step)
        if self.rank == 0 and (self.folder / tag).exists():
            log.warning("clearing %s, left by an earlier attempt, before saving into it", tag)
            shutil.rmtree(self.folder / tag)
        barrier()
        engine.save_checkpoint(str(self.folder), tag=tag, client_state=client_state, save_latest=False)
        torch.save(rng_state(), self.folder / tag / f"rank-{self.rank:05d}.pt")
        barrier()
        if self.rank == 0:
            files = {str(p.relative_to(self.folder / tag)): file_sha256(p)
                     for p in sorted((self.folder / tag).rglob("*")) if p.is_file() and p.name != MARKER}
            atomic_write_text(self.folder / tag / MARKER,
                              json.dumps({"step": step, "world_size": world_size(), "files": files}))
            atomic_write_text(self.folder / "latest", tag)
            self.prune()
        barrier()
        self.last_save_time = time.monotonic()
        log.info("saved checkpoint %s", tag)
        return self.folder / tag

    def complete_tags(self) -> list[str]:
        """Tags with a completion marker, newest first."""
        if not self.folder.is_dir():
            return []
        tags = sorted((p.name for p in self.folder.glob("step-*") if p.is_dir()), reverse=True)
        for tag in tags:
            if not (self.folder / tag / MARKER).exists():
                log.warning("ignoring %s: no %s (a save that did not finish)", tag, MARKER)
        return [t for t in tags if (self.folder / t / MARKER).exists()]

    def problem(self, tag: str) -> str | None:
        """Why ``tag`` cannot be used, or None when every file matches its checksum."""
        marker = json.loads((self.folder / tag / MARKER).read_text())
        for name, digest in marker["files"].items():
            path = self.folder / tag / name
            if not path.exists():
                return f"{name} is missing"
            if file_sha256(path) != digest:
                return f"{name} does not match its checksum"
        return None

    def newest_usable(self) -> str | None:
        tags = self.complete_tags()
        for tag in tags:
            reason = self.problem(tag)
            if reason is None:
                return tag
            self.corrupt.add(tag)
            log.warning("checkpoint %s is corrupt (%s); falling back to the one before", tag, reason)
        if tags:
            log.warning("no usable checkpoint under %s (%d found, every one corrupt): starting from step 0",
                        self.folder, len(tags))
        return None

    def saved_world_size(self, tag: str) -> int:
        marker = json.loads((self.folder / tag / MARKER).read_text())
        return marker.get("world_size") or len(list((self.folder / tag).glob("rank-*.pt")))

    def plan_resume(self) -> Resume | None:
        """Collective, before the engine exists: the newest usable checkpoint, converted to
        the universal format (by rank 0, once) when it was written by a different number of
        ranks and its optimizer state is partitioned. None when there is nothing to resume."""
        tag = self.newest_usable()
        if tag is None:
            return None
        saved, now = self.saved_world_size(tag), world_size()
        if saved == now or not partitioned(self.folder / tag):
            return Resume(tag, tag, saved)
        log.warning("%s was written by %d ranks and this job has %d: loading it as a universal checkpoint",
                    tag, saved, now)
        if self.rank == 0:
            convert(self.folder / tag)
        else:  # polls the filesystem: the conversion may outlast any collective's timeout
            wait_for_conversion(self.folder / tag)
        barrier()
        return Resume(tag, universal_tag(tag), saved)

    def load(self, engine, resume: Resume) -> tuple[int, dict]:
        """Restore ``resume`` into ``engine`` (built with ``checkpoint.load_universal`` when
        ``resume.universal``): (step, client state)."""
        path, client_state = engine.load_checkpoint(str(self.folder), tag=resume.load_tag)
        if path is None:
            raise RuntimeError(f"DeepSpeed could not load verified checkpoint {self.folder / resume.load_tag}")
        step = int(client_state["step"])
        rng_file = self.folder / resume.tag / f"rank-{self.rank:05d}.pt"
        if resume.saved_world_size == world_size() and rng_file.exists():
            set_rng_state(load(rng_file))
        else:  # the ranks are not the ones that saved: a fresh stream per (seed, step, rank)
            torch.manual_seed(hash((torch.initial_seed(), step, self.rank)) % 2**63)
        log.info("resumed from %s", resume.tag)
        return step, client_state

    def prune(self) -> None:
        """Keep the newest ``keep_last`` checkpoints known good; corrupt ones never count towards
        them (a run restarted from step 0 below corrupt ones must not prune its own new saves)."""
        complete = self.complete_tags()
        good = [t for t in complete if t not in self.corrupt]
        for tag in good[self.keep_last:] + [t for t in complete if t in self.corrupt]:
            shutil.rmtree(self.folder / tag, ignore_errors=True)
        for copy in self.folder.glob(f"{PREFIX}*"):
            if not (self.folder / copy.name.removeprefix(PREFIX)).is_dir():
                shutil.rmtree(copy, ignore_errors=True)
