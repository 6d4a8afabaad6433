"""Reading torch files without running pickled code.

Every ``torch.load`` in ecgdist goes through ``load``: ``weights_only=True``, so a file yields
tensors and plain values only. Besides those, a user may allow the few plain-data classes in
``PLAIN_DATA_TYPES`` by name (``finetune.trusted_types``, ``--trust-type``): each rebuilds data
from data and calls nothing else. No other name is ever allowed, however it is spelled: a
pickle calls whatever it names (``timeit.timeit`` or ``builtins.exec`` run code, and a class
is no safer for being one: ``subprocess.Popen`` starts a program).
"""

from __future__ import annotations

import _compat_pickle
import argparse
import collections
import datetime
import io
import os
import pathlib
import re
import types
from typing import Any, Sequence

import torch

PLAIN_DATA_TYPES: dict[str, type] = {
    f"{cls.__module__}.{cls.__qualname__}": cls
    for cls in (argparse.Namespace, types.SimpleNamespace, collections.OrderedDict, pathlib.PurePosixPath,
                pathlib.PosixPath, datetime.date, datetime.datetime, datetime.timedelta)}


class UnreadableFile(ValueError):
    """A file that holds more than tensors and plain values (a pickled object), or no torch data at all."""


def refused_types(names: Sequence[str]) -> list[str]:
    """The names that are not allowed plain-data classes."""
    return [name for name in names if name not in PLAIN_DATA_TYPES]


def refusal(path: Any, found: str) -> str:
    """Why a file holding a pickled ``found`` is not read, and what the user can do about it."""
    said = f"{path} holds a pickled object of type {found}; only tensors and plain values are loaded, so no code " \
           "in the file runs."
    if found in PLAIN_DATA_TYPES:
        return (f"{said} {found} is plain data: if you trust the file, allow it with "
                f"finetune.trusted_types=[{found}] (--trust-type {found} on the command line)")
    return (f"{said} {found} is not one of the plain-data classes that can be allowed "
            f"({', '.join(PLAIN_DATA_TYPES)}); ask for the file saved as tensors and plain values, "
            "e.g. torch.save({'state_dict': model.state_dict()}, path)")


def load(path: str | os.PathLike, trusted_types: Sequence[str] = (), map_location: Any = "cpu",
         known: Sequence[type] = (), data: bytes | None = None) -> Any:
    """``torch.load`` with ``weights_only=True`` and the user's named plain-data classes allowed;
    ``known``: data classes a caller knows a file format holds (DeepSpeed's, in its checkpoints);
    ``data``: the file's bytes when the caller already read them (``path`` then names it in messages)."""
    refused = refused_types(trusted_types)
    if refused:
        raise UnreadableFile(f"only plain-data classes can be trusted ({', '.join(PLAIN_DATA_TYPES)}); "
                             f"refused: {', '.join(refused)}")
    try:
        with torch.serialization.safe_globals([PLAIN_DATA_TYPES[name] for name in trusted_types] + list(known)):
            return torch.load(io.BytesIO(data) if data is not None else path, map_location=map_location,
                              weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch's message would suggest unpickling the file: say what is in it instead
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        if not found:
            raise UnreadableFile(f"{path} holds no readable torch data ({type(error).__name__})") from None
        raise UnreadableFile(refusal(path, python3_name(found.group(1)))) from None


def python3_name(name: str) -> str:
    """A global as Python 3 calls it: pickles name ``subprocess.Popen`` by its Python 2 module
    (``commands``), and torch's message drops ``builtins.``."""
    module, _, attribute = name.rpartition(".")
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module) or 'builtins'}.{attribute}"


def check_names_only(path: str | os.PathLike, known: Sequence[type]) -> None:
    """Before code we do not own unpickles ``path`` in full (DeepSpeed's converter does): raise unless
    the file names nothing beyond what ``weights_only`` allows and ``known``. Read from the pickle's
    opcodes; nothing in the file is loaded or run."""
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in known}
    try:
        unsafe = [name for name in torch.serialization.get_unsafe_globals_in_checkpoint(path) if name not in names]
    except Exception as error:
        raise UnreadableFile(f"{path} holds no readable torch data ({type(error).__name__})") from None
    if unsafe:
        raise UnreadableFile(refusal(path, python3_name(unsafe[0])))
