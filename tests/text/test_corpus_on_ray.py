"""Corpus statistics on Ray Data: the local engine's table and notes, whatever the worker count and
batch size, with a worker killed mid-run, from the command line against a running cluster, and
stopped with Ctrl+C.

One local Ray instance (2 CPUs, no dashboard, on this machine only) serves the module; it is shut
down when the module ends, whether its tests passed or not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from attnviz.text.corpus import DIVERGENCE_SENTENCES, corpus_head_stats
from attnviz.text.corpus_cli import main
from attnviz.text.loading import load_text_model
from tests.helpers import TINY_MAX

ray = pytest.importorskip("ray", reason="ray[data] is in requirements.txt; scripts/setup-tests.sh installs it")

WORDS = "the cat sat on mat a dog ran where did it sit quick brown fox jumps over lazy he plays guitar".split()
WORKER_TITLE = "MapBatches(StatsWorker)"
#: Blocks of about 20 lines: the test corpus (12 kB) becomes many actor tasks, as a real corpus does.
BLOCK_BYTES = 1024


def corpus_lines(n: int, seed: int = 0) -> list[bytes]:
    """``n`` sentences of varied length, with what the notes count mixed in: blank lines, a line of
    only zero-width spaces, a line longer than the model's limit, lines that are not UTF-8, and
    every kind of line end."""
    rng = np.random.default_rng(seed)
    lines = [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 20)))).encode() for _ in range(n)]
    lines[3] = b""
    lines[10] = b"   "
    lines[17] = "\u200b\u200b".encode()
    lines[25] = " ".join(["cat"] * (TINY_MAX + 20)).encode()
    lines[40] = "caf\u00e9 au lait".encode("latin-1")  # not UTF-8: skipped and counted
    lines[n - 5] = b"\xff\xfe broken"
    return lines


def write_corpus(path: Path, lines: list[bytes]) -> Path:
    ends = [b"\n", b"\r", b"\r\n"]  # a lone "\r" never comes right before a blank line (that would be "\r\n")
    path.write_bytes(b"".join(line + ends[i % 3] for i, line in enumerate(lines)))
    return path


@pytest.fixture(scope="module")
def ray_address():
    """A local Ray instance for this module; its GCS address for a second driver (the command line)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        object_store_memory=200 * 1024**2,
        _temp_dir=temp,
    )
    try:
        address = ray.get_runtime_context().gcs_address
        assert address.rsplit(":", 1)[0] in own_addresses(), address  # no test reaches another machine
        yield address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory) -> Path:
    """More than DIVERGENCE_SENTENCES sentences, so the head map takes only some of them."""
    folder = tmp_path_factory.mktemp("ray_corpus")
    return write_corpus(folder / "c.txt", corpus_lines(DIVERGENCE_SENTENCES + 40))


@pytest.fixture(scope="module")
def local_stats(tiny_model, big_corpus):
    return corpus_head_stats(tiny_model, big_corpus, batch_size=32, skip_bad_lines=True)


def numbers(table: pd.DataFrame) -> np.ndarray:
    return table.select_dtypes("number").to_numpy(dtype=np.float64)


def assert_same_stats(ray_stats, local) -> None:
    assert list(ray_stats.table.columns) == list(local.table.columns)
    np.testing.assert_allclose(numbers(ray_stats.table), numbers(local.table), atol=1e-6, rtol=0)
    assert ray_stats.table["label"].tolist() == local.table["label"].tolist()
    np.testing.assert_allclose(ray_stats.divergence, local.divergence, atol=1e-6, rtol=0)
    assert ray_stats.notes() == local.notes()
    for field in ("sentences", "tokens", "total", "truncated_lines", "tokens_cut", "empty_lines", "bad_lines"):
        assert getattr(ray_stats, field) == getattr(local, field), field
    assert ray_stats.first_bad_lines == local.first_bad_lines


def test_the_local_run_counts_what_the_notes_say(local_stats):
    """The reference itself: blank, invisible, cut and non-UTF-8 lines counted, not fatal."""
    n = DIVERGENCE_SENTENCES + 40
    assert local_stats.bad_lines == 2 and local_stats.first_bad_lines == (41, n - 4)
    assert local_stats.empty_lines == 3  # two blank lines and one of zero-width spaces
    assert local_stats.truncated_lines == 1
    assert local_stats.sentences == n - 5
    notes = " ".join(local_stats.notes())
    assert "2 lines were not UTF-8 text and were skipped (lines 41, 236)" in notes
    assert "3 blank lines were skipped" in notes and "cut to it" in notes


@pytest.mark.parametrize("workers, batch_size", [(1, 7), (2, 16), (2, 1)])
def test_ray_gives_the_local_table(ray_address, tiny_bert_dir, big_corpus, local_stats, workers, batch_size):
    from attnviz.text.corpus_ray import ray_corpus_head_stats

    seen = []
    run = ray_corpus_head_stats(
        str(tiny_bert_dir),
        big_corpus,
        workers=workers,
        batch_size=batch_size,
        progress=lambda done, total: seen.append((done, total)),
        block_bytes=BLOCK_BYTES,
    )
    assert_same_stats(run.stats, local_stats)
    assert not run.stats.cancelled
    total = local_stats.total
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len({d for d, _ in seen}) > 5, "progress should come batch by batch, not in one jump"


def test_the_head_map_is_the_first_sentences_of_the_file(local_stats, tiny_model):
    """Only the file's first DIVERGENCE_SENTENCES sentences (non-blank UTF-8 lines) join the head map."""
    first = []
    for raw in corpus_lines(DIVERGENCE_SENTENCES + 40):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            continue
        if text:
            first.append(text)
    alone = corpus_head_stats(tiny_model, first[:DIVERGENCE_SENTENCES], batch_size=50)
    assert alone.divergence is not None
    np.testing.assert_allclose(local_stats.divergence, alone.divergence, atol=1e-9)
    everything = corpus_head_stats(tiny_model, first, batch_size=50)
    assert not np.allclose(everything.table["entropy"], alone.table["entropy"])  # the rest does count elsewhere


def test_a_decoder_on_ray_gives_the_local_table(ray_address, tiny_decoder_dirs, tmp_path):
    from attnviz.text.corpus_ray import ray_corpus_head_stats

    folder = str(tiny_decoder_dirs["llama"])
    path = write_corpus(tmp_path / "d.txt", corpus_lines(60, seed=3))
    local = corpus_head_stats(load_text_model(folder, device="cpu"), path, skip_bad_lines=True)
    run = ray_corpus_head_stats(folder, path, workers=2, batch_size=9)
    assert_same_stats(run.stats, local)
    assert "induction_mass" in run.stats.table.columns


def _worker_pids() -> list[int]:
    """Processes of the running pool's actors (Ray titles them after the map operator)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if WORKER_TITLE in command and "ray::" in command:
                pids.append(int(entry.name))
    return pids


def test_a_worker_killed_mid_run_changes_nothing(ray_address, tiny_bert_dir, big_corpus, local_stats):
    from attnviz.text.corpus_ray import ray_corpus_head_stats

    killed = []

    def kill_one_worker(done, total):
        if done > 0 and not killed:
            pids = _worker_pids()
            assert pids, "no actor of the pool was found to kill"
            os.kill(pids[0], signal.SIGKILL)
            killed.append((pids[0], done))

    run = ray_corpus_head_stats(
        str(tiny_bert_dir), big_corpus, workers=2, batch_size=1, progress=kill_one_worker, block_bytes=BLOCK_BYTES
    )
    assert killed and killed[0][1] < local_stats.total / 2, killed  # killed with most of the file to go
    assert_same_stats(run.stats, local_stats)


def test_the_command_line_runs_on_a_running_cluster(ray_address, tiny_bert_dir, big_corpus, local_stats, tmp_path):
    out = tmp_path / "stats.csv"
    command = [sys.executable, "-m", "attnviz.text.corpus_cli", str(big_corpus), "--model", str(tiny_bert_dir)]
    command += ["--engine", "ray", "--address", ray_address, "--workers", "2", "--batch-size", "10"]
    command += ["--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=_env())
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    np.testing.assert_allclose(numbers(table), numbers(local_stats.table), atol=2e-6, rtol=1e-5)  # CSV: 6 digits
    assert f"{local_stats.total:,}/{local_stats.total:,} sentences" in result.stderr
    assert "/s" in result.stderr and "Ray start-up" in result.stderr
    for note in local_stats.notes():
        assert note in result.stderr


def test_ctrl_c_stops_cleanly_with_the_lines_done(ray_address, tiny_bert_dir, tmp_path):
    path = write_corpus(tmp_path / "long.txt", corpus_lines(3000, seed=5))
    out = tmp_path / "stats.csv"
    command = [sys.executable, "-m", "attnviz.text.corpus_cli", str(path), "--model", str(tiny_bert_dir)]
    command += ["--engine", "ray", "--address", ray_address, "--workers", "1", "--batch-size", "1"]
    command += ["--out", str(out)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=_env())
    lines = []
    deadline = time.monotonic() + 240
    for line in process.stderr:
        lines.append(line)
        if "sentences" in line and "/s" in line:  # the first progress line: the run is under way
            process.send_signal(signal.SIGINT)
            break
        assert time.monotonic() < deadline, "".join(lines)
    _, rest = process.communicate(timeout=240)
    err = "".join(lines) + rest
    assert process.returncode == 130, err
    assert "Stopping after the current batch" in err and "Stopped after" in err and "Traceback" not in err
    assert len(pd.read_csv(out)) == 8


def test_bad_ray_options_are_messages(tiny_bert_dir, big_corpus, tmp_path, capsys):
    args = [str(big_corpus), "--model", str(tiny_bert_dir), "--engine", "ray", "--out", str(tmp_path / "s.csv")]
    assert main([*args, "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "--workers must be at least 1" in err and "Traceback" not in err


def test_an_object_store_uri_is_refused_not_given_another_head_map(tiny_bert_dir):
    from attnviz import InputError
    from attnviz.text.corpus_ray import ray_corpus_head_stats

    with pytest.raises(InputError, match="shared file system"):
        ray_corpus_head_stats(str(tiny_bert_dir), "s3://bucket/sentences.txt")


def own_addresses() -> set[str]:
    """This machine's own addresses: its network interfaces' (psutil comes with accelerate)."""
    import psutil

    return {address.address for addresses in psutil.net_if_addrs().values() for address in addresses}


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": root, "RAY_USAGE_STATS_ENABLED": "0"}
