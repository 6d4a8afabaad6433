"""The forked launcher behaves as ``python`` does on what the tests rely on (tests/forked.py)."""

import os
import signal
import subprocess
import sys
import time

import forked
from conftest import REPO

PROBE = """
import json, multiprocessing, os, sys
print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "env": os.environ.get("PROBE"),
                  "start_method": multiprocessing.get_start_method()}))
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


def both(argv, tmp_path, **env):
    """``python ARGV`` run by a fresh interpreter and by the fork server, in the same folder and environment."""
    environ = {**os.environ, **env}
    fresh = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=environ, capture_output=True, text=True)
    return fresh, forked.run(argv, env=environ, cwd=tmp_path)


def test_code_arguments_folder_environment_and_output_are_those_of_a_fresh_interpreter(tmp_path):
    fresh, fork = both(["-c", PROBE, "3", "x"], tmp_path, PROBE="seen")
    assert fork.returncode == fresh.returncode == 3
    assert fork.stdout == fresh.stdout and '"env": "seen"' in fork.stdout and '"fork"' in fork.stdout
    assert fork.stderr == fresh.stderr == "to stderr\n"


def test_a_module_runs_as_main_and_an_uncaught_error_exits_1_with_its_traceback(tmp_path):
    fresh, fork = both(["-m", "ecgdist.pretrain", str(tmp_path / "missing.yaml")], tmp_path)
    assert fork.returncode == fresh.returncode != 0  # the command's own refusal, as its __main__ exits
    assert fork.stderr == fresh.stderr
    fresh, fork = both(["-c", "raise KeyError('boom')"], tmp_path)
    assert fork.returncode == fresh.returncode == 1
    assert fork.stderr.splitlines()[-1] == fresh.stderr.splitlines()[-1] == "KeyError: 'boom'"


def test_a_signal_ends_it_with_minus_the_signal_number_as_popen_says(tmp_path):
    started = forked.start(["-c", "import time; print('up', flush=True); time.sleep(60)"], env=os.environ,
                           cwd=REPO, stdout=tmp_path / "out")
    while "up" not in (tmp_path / "out").read_text():
        assert started.poll() is None
        time.sleep(0.05)
    started.send_signal(signal.SIGTERM)
    assert started.wait(timeout=30) == -signal.SIGTERM


def test_a_file_size_limit_makes_large_writes_fail_as_on_a_full_disk(tmp_path):
    write = f"open({str(tmp_path / 'big')!r}, 'wb').write(bytes(10_000))"
    done = forked.run(["-c", write], env=os.environ, cwd=tmp_path, file_size_limit=1000)
    assert done.returncode == 1 and "OSError: [Errno 27] File too large" in done.stderr


def test_libraries_that_read_the_environment_at_import_are_not_preloaded(tmp_path):
    """A test that sets HF_HUB_OFFLINE or HF_HOME for one command needs huggingface_hub imported by it."""
    done = forked.run(["-c", "import sys; print('huggingface_hub' in sys.modules)"], env=os.environ, cwd=tmp_path)
    assert done.stdout == "False\n"


def test_it_waits_for_the_commands_own_threads_as_the_interpreter_does(tmp_path):
    late = tmp_path / "late"
    code = f"import threading, time; threading.Thread(target=lambda: (time.sleep(1), open({str(late)!r}, 'w'))).start()"
    assert forked.run(["-c", code], env=os.environ, cwd=tmp_path).returncode == 0
    assert late.exists()


def test_an_idle_thread_pool_ends_with_the_command_as_it_does_in_the_interpreter(tmp_path):
    """concurrent.futures' workers are non-daemon threads that only threading's exit hook stops
    (torch.compile leaves such a pool behind)."""
    code = ("import concurrent.futures as futures; futures.pool = futures.ThreadPoolExecutor(2); "
            "print(futures.pool.submit(int, '7').result())")  # the pool held by a module, as inductor holds its own
    done = forked.run(["-c", code], env=os.environ, cwd=tmp_path, timeout=60)
    assert (done.returncode, done.stdout) == (0, "7\n")
