"""Batches from DataLoader workers to the training process without a fresh shared-memory segment each.

By default a worker returns every tensor of every batch in a new shared-memory segment:
the worker creates it and faults its pages in, the training process maps it and faults
them in again, and both unmap it afterwards. For the 7.7 MB signal that costs about as
much as reading the batch; for the small tensors beside it (indices, targets) the
segment's life cycle is the whole cost, and on our 2-core test machine it also halves
the training process's speed for as long as it runs (docs/benchmarks.md, "The worker
hand-off"). Here (``SlotHandOff.pack``):

- the signal goes into one of a ring of slots each worker allocates once; the training
  process keeps every live worker's ring mapped, torch reuses a mapping it already
  holds, and the hand-off is one copy. The training process gives the slot back
  (``release``) once it has copied the batch out (``ShardDataset.to_device`` does);
  a worker whose slots are all taken, or whose batch does not fit them, hands over a
  fresh tensor as before, so a consumer that never releases never sees a slot
  overwritten under it;
- every other tensor travels inside the message, by value, and arrives as a tensor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import get_worker_info

# Batches one worker can have out at once: DataLoader's prefetch_factor (4 in make_loader)
# handed over or in the making, and the one the training process is consuming. Each slot
# holds one batch's signal (7.7 MB for 64 x 12 x 5000 float16) in /dev/shm.
SLOTS = 5


@dataclass
class Ticket:
    """Which slot of which worker's ring a handed-over signal occupies. Not a tensor, so
    DataLoader's pin-memory thread passes it through instead of copying it."""

    pid: int  # the worker process, whose ring this is
    slot: int
    buffers: torch.Tensor  # the whole ring: holding it keeps the ring mapped in the training process
    taken: torch.Tensor  # (slots,) int8 in shared memory, 1 while the training process holds the slot


class ByValue:
    """A small tensor that crosses to the training process inside the pickled message."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.array = tensor.numpy()

    def __reduce__(self):
        return torch.from_numpy, (self.array,)


class SlotRing:
    """One worker's slots for signals of one shape and dtype (a shorter last batch fits too)."""

    def __init__(self, shape: torch.Size, dtype: torch.dtype, slots: int = SLOTS) -> None:
        self.pid = os.getpid()
        self.buffers = torch.empty((slots, *shape), dtype=dtype).share_memory_()
        self.taken = torch.zeros(slots, dtype=torch.int8).share_memory_()

    def place(self, signal: torch.Tensor) -> tuple[torch.Tensor, Ticket] | None:
        """A view of a free slot holding a copy of ``signal``, or None when none is free or it does not fit."""
        fits = signal.dtype == self.buffers.dtype and signal.shape[1:] == self.buffers.shape[2:]
        if not fits or len(signal) > self.buffers.shape[1]:
            return None
        free = np.flatnonzero(self.taken.numpy() == 0)
        if not len(free):
            return None
        slot = int(free[0])
        self.taken[slot] = 1
        view = self.buffers[slot, :len(signal)]
        view.copy_(signal)
        return view, Ticket(self.pid, slot, self.buffers, self.taken)


class SlotHandOff:
    """A dataset's end of the hand-off: ``pack`` runs in its workers, ``release`` in the training process."""

    def __init__(self, slots: int = SLOTS) -> None:
        self.slots = slots
        self._ring: SlotRing | None = None
        self._held: dict[int, Ticket] = {}  # worker pid -> its latest ticket: never unmap a live worker's ring
        self._pid = os.getpid()

    def pack(self, batch: dict) -> dict:
        """In a DataLoader worker: ``batch`` ready to cross, its "signal" in a slot when one is free
        (the ticket under "slot"), every other tensor by value. Elsewhere: ``batch`` itself."""
        if get_worker_info() is None:
            return batch
        if self._pid != os.getpid():  # a fresh worker: its ring is its own
            self._ring, self._held, self._pid = None, {}, os.getpid()
        packed = {k: ByValue(v) if torch.is_tensor(v) and k != "signal" else v for k, v in batch.items()}
        if self._ring is None:
            self._ring = SlotRing(batch["signal"].shape, batch["signal"].dtype, self.slots)
        placed = self._ring.place(batch["signal"])
        if placed is not None:
            packed["signal"], packed["slot"] = placed
        return packed

    def release(self, ticket: Ticket) -> None:
        """The training process is done with the slot: its worker may refill it."""
        if ticket.pid not in self._held:  # a new worker: forget the rings of workers that have exited
            self._held = {pid: held for pid, held in self._held.items() if alive(pid)}
        self._held[ticket.pid] = ticket  # keeps the worker's ring mapped here, so its next batch maps for free
        ticket.taken[ticket.slot] = 0

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_ring": None, "_held": {}}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
