"""DeepSpeed checkpoints that resume: every rank saves, a marker says a checkpoint is whole.

Layout under ``run_dir/checkpoints``: one folder per save, ``step-00000100``, holding
DeepSpeed's files (model and ZeRO optimizer partitions, scheduler, client state), one
``rank-NNNNN.pt`` per rank (its RNG state) and, written last by rank 0 after every rank
finished, ``complete.json`` with the sha256 of every file. A folder without that marker
is a save that crashed and is ignored; a folder whose marker is unreadable or whose files
no longer match their checksums is corrupt: resuming then falls back to the one before,
and says so. Rank 0 verifies and tells the other ranks its choice; it alone sets corrupt
checkpoints aside (``corrupt-step-N``, kept on disk, never counted or pruned), and when
every checkpoint is corrupt the run stops naming them unless a fresh start is asked for
(``checkpoint.fresh_start``, or a ``FRESH_START`` file in the folder, which a requeued job
sees). The marker also holds the probe values of its step (pretrain/probe.py), so with
``checkpoint.keep_best`` the checkpoint with the best value of that metric is kept besides the
newest ``keep_last``. Nothing is deleted but complete checkpoints that still match their
checksums, have ``keep_last`` newer ones and are not the best. No checkpoint is written from
a model or optimizer holding a non-finite value. A checkpoint written by a different number of ranks is loaded through
DeepSpeed's universal format (``universal_checkpoint``).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ecgdist.dist import any_rank, from_rank0
from ecgdist.files import atomic_write_text, file_sha256
from ecgdist.pretrain.engine_interface import TrainingEngine
from ecgdist.pretrain.deepspeed_adapter import LATEST, partitioned
from ecgdist.pretrain.universal_checkpoint import PREFIX, convert, universal_tag, wait_for_conversion
from ecgdist.safe_load import load

log = logging.getLogger(__name__)
MARKER = "complete.json"
SET_ASIDE = "corrupt-"  # prefix of a corrupt checkpoint's folder once set aside
FRESH_START = "FRESH_START"  # a file in the checkpoint folder: start from step 0 when every checkpoint is corrupt


class CheckpointsCorrupt(RuntimeError):
    """Every checkpoint of a run is corrupt: resuming would silently restart; the message names them."""


def finite_state(engine: TrainingEngine) -> bool:
    """Whether this rank's model and optimizer tensors (its partition under ZeRO) are all finite."""
    optimizer = getattr(engine.optimizer, "optimizer", engine.optimizer)  # ZeRO wraps the torch optimizer
    tensors = [getattr(p, "ds_tensor", p) for p in engine.module.parameters()]
    if optimizer is not None:
        for group in optimizer.param_groups:
            for param in group["params"]:
                tensors += [param, *(v for v in optimizer.state.get(param, {}).values() if torch.is_tensor(v))]
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point() and t.numel())


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
        keep_best: a probe metric; the checkpoint with its highest value is never pruned.
    """

    def __init__(self, folder: Path, save_every_steps: int = 0, save_every_minutes: float = 0.0,
                 keep_last: int = 2, rank: int = 0, keep_best: str = "") -> None:
        self.folder = Path(folder)
        self.save_every_steps, self.save_every_minutes = save_every_steps, save_every_minutes
        self.keep_last, self.rank, self.keep_best = keep_last, rank, keep_best
        self.last_save_time = time.monotonic()
        self.corrupt: dict[str, str] = {}  # tag -> why it is corrupt, found by newest_usable

    def due_by_steps(self, step: int) -> bool:
        """Whether ``train.save_every_steps`` falls at ``step`` (the same answer on every rank)."""
        return self.save_every_steps > 0 and step % self.save_every_steps == 0

    def due(self, step: int, last_step: bool) -> bool:
        """Whether a save is due after ``step``; the minutes clock is this rank's, shared by the caller."""
        by_time = self.save_every_minutes > 0 and time.monotonic() - self.last_save_time >= 60 * self.save_every_minutes
        return last_step or self.due_by_steps(step) or by_time

    def save(self, engine: TrainingEngine, step: int, client_state: dict, probe_values: dict | None = None) -> Path:
        """Collective: every rank must call it. A folder of the same step left by a crashed
        attempt is cleared first; DeepSpeed's ``latest`` pointer is written last, after the marker
        (which records ``probe_values``, the step's probe results, if any).
        Refuses (every rank) when any rank's model or optimizer holds a non-finite value."""
        (broken,) = any_rank(not finite_state(engine))
        if broken:
            raise FloatingPointError(f"not saving step {step}: the model or optimizer holds non-finite values "
                                     f"(the newest checkpoint under {self.folder} is left as it is)")
        tag = step_tag(step)
        if self.rank == 0 and (self.folder / tag).exists():
            log.warning("clearing %s, left by an earlier attempt, before saving into it", tag)
            shutil.rmtree(self.folder / tag)
        barrier()
        try:
            engine.save_checkpoint(str(self.folder), tag=tag, client_state=client_state, save_latest=False)
            torch.save(rng_state(), self.folder / tag / f"rank-{self.rank:05d}.pt")
        except (OSError, RuntimeError) as error:  # a full disk reaches us from torch's writer as either
            raise OSError(getattr(error, "errno", None) or errno.EIO, f"cannot write checkpoint {tag} "
                          f"({str(error).splitlines()[0] if str(error) else type(error).__name__}; is the disk full?); "
                          "without complete.json it is ignored at resume and cleared by the next save",
                          str(self.folder / tag)) from None
        barrier()
        if self.rank == 0:
            files = {str(p.relative_to(self.folder / tag)): file_sha256(p)
                     for p in sorted((self.folder / tag).rglob("*")) if p.is_file() and p.name != MARKER}
            atomic_write_text(self.folder / tag / MARKER,
                              json.dumps({"step": step, "world_size": world_size(), "files": files,
                                         "probe": probe_values or {}}))
            atomic_write_text(self.folder / LATEST, tag)
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
        try:
            files = dict(json.loads((self.folder / tag / MARKER).read_text())["files"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            return f"{MARKER} is unreadable ({type(error).__name__})"
        for name, digest in files.items():
            path = self.folder / tag / name
            if not path.exists():
                return f"{name} is missing"
            if file_sha256(path) != digest:
                return f"{name} does not match its checksum"
        return None

    def newest_usable(self) -> str | None:
        """The newest verified checkpoint; corrupt ones newer than it are logged and left where they
        are (``export`` and ``status`` may read beside a live job: only its rank 0 sets them aside)."""
        for tag in self.complete_tags():
            reason = self.problem(tag)
            if reason is None:
                return tag
            self.corrupt[tag] = reason
            log.warning("checkpoint %s is corrupt (%s); falling back to the one before", tag, reason)
        return None

    def set_aside(self, tag: str, reason: str) -> None:
        """Move a corrupt checkpoint out of the way (kept on disk, never counted or pruned)."""
        target = self.folder / f"{SET_ASIDE}{tag}"
        for n in range(1, 1000):
            if not target.exists():
                break
            target = self.folder / f"{SET_ASIDE}{tag}.{n}"
        (self.folder / tag).rename(target)
        log.warning("set corrupt checkpoint %s aside as %s (%s)", tag, target.name, reason)

    def choose_resume_tag(self, fresh_start: bool) -> str | None:
        """Rank 0's choice: the newest usable checkpoint, corrupt newer ones set aside."""
        tag = self.newest_usable()
        for corrupt, reason in self.corrupt.items():
            self.set_aside(corrupt, reason)
        if tag is None and self.corrupt:
            names = ", ".join(f"{t} ({r})" for t, r in self.corrupt.items())
            if not (fresh_start or (self.folder / FRESH_START).exists()):
                raise CheckpointsCorrupt(
                    f"every checkpoint under {self.folder} is corrupt: {names}; they are kept as {SET_ASIDE}*. "
                    f"To start from step 0 anyway: checkpoint.fresh_start=true, or (for a requeued job) "
                    f"touch {self.folder / FRESH_START}")
            log.warning("every checkpoint under %s is corrupt (%s): starting from step 0, as asked", self.folder, names)
            (self.folder / FRESH_START).unlink(missing_ok=True)
        return tag

    def marker(self, tag: str) -> dict:
        return json.loads((self.folder / tag / MARKER).read_text())

    def saved_world_size(self, tag: str) -> int:
        return self.marker(tag).get("world_size") or len(list((self.folder / tag).glob("rank-*.pt")))

    def best(self, metric: str | None = None, verify: bool = True) -> tuple[str, float] | None:
        """The complete checkpoint with the highest probe value of ``metric`` (``keep_best``), the
        earliest on a tie, and that value; None when none has one. ``verify``: the best that still
        matches its checksums (pruning only needs to know which one not to delete)."""
        metric = metric or self.keep_best
        scored = []
        for tag in self.complete_tags():
            try:
                value = float(self.marker(tag).get("probe", {}).get(metric, "nan"))
            except (OSError, ValueError, TypeError):
                continue  # an unreadable marker: problem() says so where it matters
            if math.isfinite(value):
                scored.append((-value, tag))
        for negated, tag in sorted(scored):
            reason = self.problem(tag) if verify else None
            if reason is None:
                return tag, -negated
            log.warning("the best checkpoint by %s, %s, is corrupt (%s); taking the next best", metric, tag, reason)
        return None

    def plan_resume(self, fresh_start: bool = False) -> Resume | None:
        """Collective, before the engine exists: the newest usable checkpoint (rank 0 verifies and
        tells the others), converted to the universal format (by rank 0, once) when it was written
        by a different number of ranks and its optimizer state is partitioned. None when there is
        nothing to resume."""
        choice: tuple[str | None, str | None] = (None, None)
        if self.rank == 0:
            try:
                choice = (self.choose_resume_tag(fresh_start), None)
            except CheckpointsCorrupt as error:
                choice = (None, str(error))
        tag, error = from_rank0(choice)
        if error:
            raise CheckpointsCorrupt(error)
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

    def load(self, engine: TrainingEngine, resume: Resume) -> tuple[int, dict]:
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
        """Delete complete checkpoints beyond the newest ``keep_last`` but the best (``keep_best``),
        each only after it still matches its checksums (one that does not is set aside instead)."""
        best = self.best(verify=False) if self.keep_best else None
        for tag in self.complete_tags()[self.keep_last:]:
            if best is not None and tag == best[0]:
                continue
            reason = self.problem(tag)
            if reason is None:
                shutil.rmtree(self.folder / tag, ignore_errors=True)
            else:
                self.set_aside(tag, reason)
        for copy in self.folder.glob(f"{PREFIX}*"):
            if not (self.folder / copy.name.removeprefix(PREFIX)).is_dir():
                shutil.rmtree(copy, ignore_errors=True)
