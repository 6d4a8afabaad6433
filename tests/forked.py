"""``python -m MODULE ARGS`` for tests, forked from one interpreter that has already imported
DeepSpeed and ecgdist.

A pre-training rank spends about 12 of its 13 seconds on this 2-core machine importing torch,
DeepSpeed and the parts of torch DeepSpeed pulls in at start (dynamo, inductor); the training
steps of a test run take under a second. multiprocessing's fork server imports them once per
test session; each command is then a fork of it, a real process of its own (own pid, signals,
exit code, process group with the other ranks), that runs its module as ``python -m`` does.
``make demo``'s test, torchrun, the SLURM jobs and submitit's local jobs still start fresh
interpreters, so the plain path stays tested.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.forkserver
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
import unittest.mock
from pathlib import Path

# What the commands import before they do anything (measured: `python -X importtime`, and py-spy
# on a one-step run: torch._dynamo at the first optimizer, inductor at DeepSpeed's optimizer check).
# Never a module that is itself run with -m (runpy warns when that is already imported), nor one
# that reads the environment at import and that a test varies: huggingface_hub (HF_HUB_OFFLINE,
# HF_HOME) stays out, imported by each command that uses it.
PRELOAD = ["ecgdist.pretrain.main", "ecgdist.pretrain.export", "ecgdist.pretrain.submission", "ecgdist.finetune.sweep",
           "ecgdist.finetune.job", "ecgdist.finetune.predict", "preprocess.pipeline", "deepspeed", "torch._dynamo",
           "deepspeed.runtime.zero.muon.muon_optimizer"]
# Read once, when the preloaded libraries load: the same for every command of a session.
SERVER_ENV = {"OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu"}

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(PRELOAD)


class Forked:
    """The handle on one forked command, with the parts of ``subprocess.Popen`` the tests use."""

    def __init__(self, argv: list[str], process: multiprocessing.Process):
        self.args, self._process, self.pid = argv, process, process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode  # -N when signal N ended it, as Popen says

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def start(argv: list[str], *, env: dict, cwd: Path, stdout: Path, stderr: Path | None = None,
          file_size_limit: int | None = None) -> Forked:
    """Start ``python ARGV`` (``-m MODULE ...`` or ``-c CODE ...``) with its output in files
    (``stderr`` None: with stdout). ``file_size_limit``: writes past it fail as on a full disk."""
    ensure_server()
    for path in (stdout, stderr or stdout):
        Path(path).touch()  # there at once, as a file Popen writes to, even if the fork fails early
    process = _context.Process(target=_run, args=(argv, dict(env), str(cwd), str(stdout), str(stderr or stdout),
                                                  file_size_limit))
    process.start()
    return Forked(argv, process)


def run(argv: list[str], *, env: dict, cwd: Path, timeout: float = 900,
        file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """Run ``python ARGV`` to its end, like ``subprocess.run(..., capture_output=True, text=True)``."""
    with tempfile.TemporaryDirectory() as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        forked = start(argv, env=env, cwd=cwd, stdout=out, stderr=err, file_size_limit=file_size_limit)
        try:
            code = forked.wait(timeout)
        except subprocess.TimeoutExpired:
            forked.kill()
            raise
        return subprocess.CompletedProcess(argv, code, out.read_text(), err.read_text())


def ensure_server() -> None:
    """Start the fork server (once) with the environment the preloaded libraries read at import."""
    with unittest.mock.patch.dict(os.environ, SERVER_ENV):
        multiprocessing.forkserver.ensure_running()


def _run(argv: list[str], env: dict, cwd: str, stdout: str, stderr: str, file_size_limit: int | None) -> None:
    """In the fork: what the interpreter does for ``python ARGV``, then exit with its code."""
    multiprocessing.set_start_method(None, force=True)  # the command's own workers: the platform's default
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for path, fd in ((stdout, 1), (stderr, 2)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(target, fd)
        os.close(target)
    if file_size_limit is not None:
        limit_file_size(file_size_limit)
    flag, what, *rest = argv
    sys.argv = ["-c" if flag == "-c" else what, *rest]
    code = 0
    try:
        if flag == "-m":
            runpy.run_module(what, run_name="__main__", alter_sys=True)
        else:
            exec(compile(what, "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        # The interpreter's own first exit step: threading's exit hooks (they stop idle thread
        # pools, such as the one inductor compiles in), then a wait for non-daemon threads.
        threading._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def limit_file_size(limit: int) -> None:
    """Writes past ``limit`` bytes fail with EFBIG, as they would with ENOSPC on a full disk."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _exit_code(code) -> int:
    """The status ``python`` exits with for ``sys.exit(code)``."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1
