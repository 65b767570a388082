"""What a training leaves behind on the server: old trained-model folders are deleted when a training
starts (the newest kept), and the PyTorch thread count the worker sets is put back when it ends."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import torch

from attnviz.errors import InputError
from attnviz.ui import image_training


def test_prune_keeps_the_newest_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(image_training, "TRAINED_ROOT", tmp_path)
    folders = []
    for k in range(10):
        folder = tmp_path / f"model-{k}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x")
        os.utime(folder, (1_000_000 + k, 1_000_000 + k))  # model-9 is the newest
        folders.append(folder)
    (tmp_path / "stray-file").write_text("not a model")
    deleted = image_training.prune_trained(3)
    assert deleted == folders[:7]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-7", "model-8", "model-9", "stray-file"]
    assert image_training.prune_trained(3) == []  # nothing more to delete


def test_prune_without_the_folder_does_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(image_training, "TRAINED_ROOT", tmp_path / "absent")
    assert image_training.prune_trained() == []


def _threads_in_a_new_thread() -> int:
    seen = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    return seen[0]


def test_the_worker_puts_the_thread_count_back(tmp_path, monkeypatch):
    before = torch.get_num_threads()
    wanted = image_training.TRAIN_THREADS + 1
    during = []

    def fake_train(*args, **kwargs):
        during.append(torch.get_num_threads())
        raise InputError("stopped by the test")

    monkeypatch.setattr(image_training, "train_folder", fake_train)
    torch.set_num_threads(wanted)  # a server with ATTNVIZ_THREADS above the training's one thread
    try:
        job = image_training.TrainingJob("t", 64, 10.0, tmp_path / "out", "2 classes")
        setup = image_training.Setup(image_training.FROM_FOLDER, "t", 64, 10.0, "none", folder=Path(tmp_path))
        assert image_training.SLOTS.acquire(1)  # _work releases it
        worker = threading.Thread(target=image_training._work, args=(job, setup, tmp_path, lambda: None))
        worker.start()
        worker.join()
        assert during == [image_training.TRAIN_THREADS]
        assert job.error == "stopped by the test" and not job.running
        assert _threads_in_a_new_thread() == wanted  # later script runs get the server's count again
    finally:
        torch.set_num_threads(before)
