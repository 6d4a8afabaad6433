"""Batches from DataLoader workers to the training process without shared-memory work per batch.

By default a worker returns every tensor of every batch in a new shared-memory segment:
the worker creates it and faults its pages in, the training process maps it and faults
them in again, both unmap it afterwards, and the segment's file descriptor crosses over a
fresh authenticated socket connection. For the 7.7 MB signal that costs about as much as
reading the batch; for the small tensors beside it (indices, targets) it is the whole cost
(docs/benchmarks.md, "The worker hand-off"). Here (``SlotHandOff.pack``):

- the signal goes into one of a ring of slots each worker allocates once. The ring itself
  crosses once, with the first batch that uses it; later batches carry only which slot
  they fill, and arrive as a view of the ring the training process already holds. The
  training process gives the slot back (``release``) once it has copied the batch out
  (``ShardDataset.to_device`` does). A worker whose slots are all taken, or whose batch
  does not fit them, hands over a fresh tensor as before, so a consumer that never
  releases never sees a slot overwritten under it;
- every other tensor travels inside the message, by value, and arrives as a tensor.

Rings are shared by file descriptor (torch's default), so their memory has no name in
/dev/shm and goes with the last process that maps it, however the job ends.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import get_worker_info

from ecgdist.processes import alive

# Batches one worker can have out at once: DataLoader's prefetch_factor (4 in make_loader)
# handed over or in the making, and the one the training process is consuming. Each slot
# holds one batch's signal (7.7 MB for 64 x 12 x 5000 float16) in shared memory.
SLOTS = 5

# In the training process: every ring a worker has sent, by (worker pid, ring number).
RINGS: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
_ring_numbers = itertools.count()


@dataclass(frozen=True)
class Ticket:
    """Which slot of which ring a handed-over signal occupies (plain data: it crosses by value,
    and DataLoader's pin-memory thread passes it through)."""

    ring: tuple[int, int]
    slot: int


class ByValue:
    """A small tensor that crosses to the training process inside the pickled message."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.array = tensor.numpy()

    def __reduce__(self):
        return torch.from_numpy, (self.array,)


class SlotView:
    """A filled slot as it crosses: the ring with its first batch, afterwards only the slot's number."""

    def __init__(self, ring: SlotRing, slot: int, length: int, first: bool) -> None:
        self.ring, self.slot, self.length, self.first = ring, slot, length, first

    def __reduce__(self):
        tensors = (self.ring.buffers, self.ring.taken) if self.first else (None, None)
        return slot_view, (self.ring.key, *tensors, self.slot, self.length)


def slot_view(ring: tuple[int, int], buffers: torch.Tensor | None, taken: torch.Tensor | None, slot: int,
              length: int) -> torch.Tensor:
    """Unpickled in the training process: the slot's signal, a view of a ring kept here."""
    if buffers is not None:  # the ring's first batch: keep it, forget the rings of workers that have exited
        for key in [key for key in RINGS if not alive(key[0])]:
            del RINGS[key]
        RINGS[ring] = (buffers, taken)
    return RINGS[ring][0][slot, :length]


class SlotRing:
    """One worker's slots for signals of one shape and dtype (a shorter last batch fits too)."""

    def __init__(self, shape: torch.Size, dtype: torch.dtype, slots: int = SLOTS) -> None:
        self.key = (os.getpid(), next(_ring_numbers))
        self.buffers = torch.empty((slots, *shape), dtype=dtype).share_memory_()
        self.taken = torch.zeros(slots, dtype=torch.int8).share_memory_()  # 1 while the training process holds it
        self.sent = False

    def place(self, signal: torch.Tensor) -> tuple[SlotView, Ticket] | None:
        """``signal`` copied into a free slot, as it will cross, or None when none is free or it does not fit."""
        fits = signal.dtype == self.buffers.dtype and signal.shape[1:] == self.buffers.shape[2:]
        if not fits or len(signal) > self.buffers.shape[1]:
            return None
        free = np.flatnonzero(self.taken.numpy() == 0)
        if not len(free):
            return None
        slot = int(free[0])
        self.taken[slot] = 1
        self.buffers[slot, :len(signal)].copy_(signal)
        view = SlotView(self, slot, len(signal), first=not self.sent)
        self.sent = True
        return view, Ticket(self.key, slot)


class SlotHandOff:
    """A dataset's end of the hand-off: ``pack`` runs in its workers, ``release`` in the training process."""

    def __init__(self, slots: int = SLOTS) -> None:
        self.slots = slots
        self._ring: SlotRing | None = None  # made in a worker only: workers start from the training process's None

    def pack(self, batch: dict) -> dict:
        """In a DataLoader worker: ``batch`` ready to cross, its "signal" in a slot when one is free
        (the ticket under "slot"), every other tensor by value. Elsewhere: ``batch`` itself."""
        if get_worker_info() is None:
            return batch
        packed = {k: ByValue(v) if torch.is_tensor(v) and k != "signal" else v for k, v in batch.items()}
        if self._ring is None:
            self._ring = SlotRing(batch["signal"].shape, batch["signal"].dtype, self.slots)
        placed = self._ring.place(batch["signal"])
        if placed is not None:
            packed["signal"], packed["slot"] = placed
        return packed

    @staticmethod
    def release(ticket: Ticket) -> None:
        """The training process is done with the slot: its worker may refill it (if it still runs)."""
        ring = RINGS.get(ticket.ring)  # one lookup: the pin-memory thread may be pruning RINGS meanwhile
        if ring is not None:
            ring[1][ticket.slot] = 0


