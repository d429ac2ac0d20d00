"""Where trials run: this process, local worker processes, or a Dask cluster.

No scheduler of our own: local processes go through ``concurrent.futures`` and a cluster
through Dask's ``Client.get_executor()``, which is a ``concurrent.futures.Executor`` too, so
the strategy sees one interface. ``--jobs 1`` runs trials in this process (no worker to
start, and the figures of a serial run are those of the plain API).
"""
from __future__ import annotations

import contextlib
from concurrent.futures import Executor, Future, ProcessPoolExecutor

from ..errors import TfloptError


class InlineExecutor(Executor):
    """Runs each call at submit, in this process: ``--jobs 1``."""

    def submit(self, fn, /, *args, **kwargs):
        f: Future = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:  # handed to the caller through the future, as a pool would
            f.set_exception(e)
        return f


@contextlib.contextmanager
def make_executor(jobs: int = 1, scheduler: str | None = None):
    """An Executor for the search's trials; closed (workers stopped) on exit."""
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise TfloptError("--scheduler needs Dask: pip install 'tflopt[dask]'") from None
        try:
            client = Client(scheduler, timeout="20s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise TfloptError(f"--scheduler {scheduler}: cannot connect ({' '.join(str(e).split())[:160]})") from None
        try:
            # pure=False: a trial has side effects (the shared cache), never dedupe by arguments.
            yield client.get_executor(pure=False)
        finally:
            client.close()
        return
    if jobs <= 1:
        yield InlineExecutor()
        return
    import multiprocessing
    # spawn: the parent may hold LiteRT interpreters and threads, which fork would copy mid-state.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool
