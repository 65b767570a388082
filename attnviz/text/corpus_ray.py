"""Corpus statistics on Ray Data: the local engine's table, from workers on many machines.

    python -m attnviz.text.corpus_cli sentences.txt --engine ray --workers 4 --batch-size 64
    python -m attnviz.text.corpus_cli sentences.txt --engine ray --address HEAD:6379 --gpus-per-worker 1

How it runs (Ray Data, no scheduler of ours):

1. The driver checks the file once (:func:`~attnviz.text.corpus.scan_corpus_file`: a UTF-16 file,
   a binary file or an empty one is refused before any worker starts) and counts its lines for
   the progress bar.
2. ``ray.data.read_datasource`` reads the file with :class:`CorpusLines`, a ``FileBasedDatasource``
   that splits lines exactly as the local engine does (``\\n``, ``\\r\\n`` or a lone ``\\r``) and
   keeps each line's number and raw bytes. It does not decode: a line that is not UTF-8 reaches a
   worker, which counts it, so one bad line never fails a read task. (``ray.data.read_text``
   decodes the whole file at once, and a single bad byte would end the job.)
3. ``map_batches`` runs :class:`StatsWorker` on an actor pool: each actor loads the model once and
   turns a batch of lines into a :class:`~attnviz.text.corpus.CorpusAccumulator` of per-head sums,
   sent back as ``.npz`` bytes of plain arrays (a few kB; no pickle to load on the driver). No
   attention array leaves a worker.
4. The driver merges the sums as they stream in (any order: sums commute) and makes the same
   table, with the same notes, as the local engine. The head map (divergence between heads) takes
   the lines up to the file's 200th sentence, read from the line numbers, so it too is the same.

Ray Data's actor pool restarts an actor that dies (``max_restarts=-1``) and retries its batch
(``max_task_retries=-1``): a worker killed mid-run changes nothing in the result.

On a cluster the file must be readable at the same path on the driver and on every node that runs
a read task (a shared file system): the driver's check finds the line where the head map's 200
sentences end, so object-store URIs (``s3://…``) are refused rather than given another head map.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnviz.errors import InputError
from attnviz.text.corpus import (
    BATCH_SIZE,
    CorpusAccumulator,
    CorpusStats,
    ProgressFn,
    _byte_lines,
    corpus_line,
    scan_corpus_file,
)

INSTALL_HINT = 'pip install "ray[data]==2.60.0"'
#: Lines per block the reader yields.
LINES_PER_BLOCK = 512
#: Bytes per block Ray Data may merge the reader's blocks into (its default, 128 MB, would make a
#: 20,000-line file one block: one actor task for half the file, progress in two jumps, the other
#: worker idle). 32 kB is about 500 short lines: a few seconds of work per task, many tasks to share.
BLOCK_BYTES = 32 * 1024
#: CPUs a read task asks for: none. Reading lines is cheap, and a read task that reserves any CPU
#: waits for ever when the actors hold them all (two workers on two cores: the pool waits for the
#: reader and the reader for the pool).
READ_CPUS = 0


def _ray():
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is in requirements.txt
        raise InputError(f"The Ray engine needs Ray Data: {INSTALL_HINT}") from exc
    return ray


def _datasource_class():
    from ray.data.datasource import FileBasedDatasource

    class CorpusLines(FileBasedDatasource):
        """A text file as rows of (line number, raw bytes), split as the local engine splits."""

        def _read_stream(self, f, path: str) -> Iterator:
            import pyarrow as pa

            numbers: list[int] = []
            raws: list[bytes] = []
            for number, raw in enumerate(_byte_lines(f), start=1):
                numbers.append(number)
                raws.append(raw)
                if len(numbers) == LINES_PER_BLOCK:
                    yield pa.table({"line": pa.array(numbers, pa.int64()), "raw": pa.array(raws, pa.binary())})
                    numbers, raws = [], []
            if numbers:
                yield pa.table({"line": pa.array(numbers, pa.int64()), "raw": pa.array(raws, pa.binary())})

    return CorpusLines


class StatsWorker:
    """A Ray Data actor: loads the model once, then turns batches of lines into partial sums."""

    def __init__(
        self,
        model: str,
        device: str | None,
        threads: int | None,
        divergence_last_line: int | None,
        name: str,
    ):
        import torch

        from attnviz.text.loading import load_text_model

        if threads:
            torch.set_num_threads(threads)
        self.tm = load_text_model(model, device=device)
        # Lines after this one never join the head map (None: the file has fewer than 200 sentences).
        self.divergence_last_line = divergence_last_line if divergence_last_line is not None else sys.maxsize
        self.name = name

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        acc = CorpusAccumulator.for_model(self.tm)
        sentences, joins, bad, blank = [], [], [], 0
        for number, raw in zip(batch["line"].tolist(), batch["raw"], strict=True):
            text = corpus_line(bytes(raw), number, self.name)
            if text is None:
                bad.append(number)
            elif text.strip():
                sentences.append(text)
                joins.append(number <= self.divergence_last_line)
            else:
                blank += 1
        if sentences:
            acc.add_batch(self.tm, sentences, divergence=joins)
        acc.empty_lines += blank
        acc.add_bad_lines(bad)
        return {"partial": np.array([acc.to_bytes()], dtype=object)}


@dataclass(frozen=True)
class RayRun:
    """How a run went on Ray, beside its statistics."""

    stats: CorpusStats
    startup_seconds: float  # connecting to (or starting) Ray, before the first line is read
    first_batch_seconds: float  # from then to the first batch's sums: the actors start and load the model
    workers: int
    batch_size: int


def _connect(address: str | None, num_cpus: int | None):
    """Connect to a cluster at ``address``, or start a local instance; True when we started it."""
    ray = _ray()
    if ray.is_initialized():
        return False
    # No usage report to ray.io, no dashboard: nothing leaves the machines the user chose.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if address:
        # The cluster's nodes get this checkout's attnviz with the job (Ray's py_modules), so only
        # the packages of requirements.txt need installing on them.
        package = str(Path(__file__).resolve().parents[1])
        ray.init(address=address, runtime_env={"py_modules": [package]}, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)
    return True


def ray_corpus_head_stats(
    model: str,
    path: str | os.PathLike,
    *,
    address: str | None = None,
    workers: int = 2,
    gpus_per_worker: float = 0,
    cpus_per_worker: float = 1,
    threads: int | None = None,
    batch_size: int = BATCH_SIZE,
    device: str | None = None,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    local_cpus: int | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> RayRun:
    """:func:`attnviz.corpus_head_stats` of a file, on Ray Data's actor pool; the same table.

    Args:
        model: a model name as :func:`attnviz.load_text_model` takes it (each worker loads it).
        path: the corpus, one sentence per line; on a cluster, a path every node can read.
        address: a running cluster (``ray start --head`` prints it); None starts a local instance
            with ``local_cpus`` CPUs (None: all) — or uses the one this process already started.
        workers: actors in the pool (each holds one copy of the model).
        gpus_per_worker, cpus_per_worker: what each actor reserves (``--gpus-per-worker 1`` puts one
            model per GPU).
        threads: PyTorch threads per actor (default: ``cpus_per_worker``).
        batch_size: lines per batch handed to an actor.
        progress: ``progress(sentences_done, sentences_total)`` after every batch that arrives.
        should_stop: checked after every batch; True stops the run (``cancelled``), and the result
            covers the batches merged so far.
        block_bytes: the most bytes of lines one actor task takes at a time (:data:`BLOCK_BYTES`):
            smaller blocks give finer progress and spread a small file over more workers.
    """
    if workers < 1:
        raise InputError("--workers must be at least 1.")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}.")
    if gpus_per_worker < 0 or cpus_per_worker <= 0:
        raise InputError("--gpus-per-worker must be 0 or more, and each worker needs some CPU.")
    if "://" in str(path):
        raise InputError(
            f"{path}: the Ray engine reads a file path that the driver and every worker see (a shared file "
            "system); copy the corpus there first."
        )
    corpus = scan_corpus_file(path, skip_bad_lines=True)
    name = corpus.name
    total = corpus.lines - corpus.empty_lines - corpus.bad_lines
    source = str(Path(path).resolve())

    started = time.perf_counter()
    ray = _ray()
    we_started = _connect(address, local_cpus)
    try:
        from ray.data import DataContext

        # Ray Data logs each execution's plan and end at INFO on the driver, between our progress lines.
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        context = DataContext.get_current()
        context.enable_progress_bars = False  # ours is the one bar; Ray's would interleave with it
        context.print_on_execution_start = False
        context.target_max_block_size = block_bytes
        startup = time.perf_counter() - started
        run_started = time.perf_counter()
        dataset = ray.data.read_datasource(_datasource_class()(source), num_cpus=READ_CPUS).map_batches(
            StatsWorker,
            fn_constructor_kwargs={
                "model": model,
                "device": device,
                "threads": threads if threads is not None else max(1, int(cpus_per_worker)),
                "divergence_last_line": corpus.divergence_last_line,
                "name": name,
            },
            batch_size=batch_size,
            concurrency=workers,
            num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker or None,
            batch_format="numpy",
        )
        acc: CorpusAccumulator | None = None
        cancelled = False
        if progress is not None:
            progress(0, total)
        first_batch = float("nan")
        for row in dataset.iter_rows():
            partial = CorpusAccumulator.from_bytes(row["partial"])
            if acc is None:
                first_batch = time.perf_counter() - run_started
                acc = partial
            else:
                acc.merge(partial)
            if progress is not None:
                progress(acc.offered, total)
            if should_stop is not None and should_stop():
                cancelled = True
                break
        if acc is None or (acc.sentences == 0 and not cancelled):
            raise InputError("There were no sentences to analyse (every line was blank).")
        acc.seconds = time.perf_counter() - run_started
        stats = acc.result(total=total, cancelled=cancelled)
    finally:
        if we_started:
            ray.shutdown()
    return RayRun(
        stats=stats,
        startup_seconds=startup,
        first_batch_seconds=first_batch,
        workers=workers,
        batch_size=batch_size,
    )
