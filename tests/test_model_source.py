"""Where models may be loaded from: the policy of attnviz.model_source, in the loaders and the app's picker."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
import torch

import attnviz
from attnviz import model_source
from attnviz.image.loading import BUNDLED_IMAGE_MODEL
from attnviz.model_source import (
    BUNDLED,
    DIRS_ENV,
    FOLDER,
    HUB,
    HUB_ENV,
    LOCAL_ENV,
    Policy,
    resolve_model_source,
)
from attnviz.text.loading import BUNDLED_TEXT_MODEL
from attnviz.ui.safe import md_escape


@pytest.fixture(autouse=True)
def default_policy(monkeypatch):
    """Every test starts from the defaults, whatever the environment running the tests says."""
    for key in (LOCAL_ENV, DIRS_ENV, HUB_ENV):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def image_model_dir(tmp_path_factory):
    """A random CnnAttention saved the way ``python -m attnviz.image.train`` saves it (fast: no training)."""
    from attnviz.image import generated_shapes
    from attnviz.image.cnn_attention import CnnAttention, CnnAttentionConfig
    from attnviz.image.train import save

    torch.manual_seed(0)
    config = CnnAttentionConfig()
    card = {"classes": list(generated_shapes.CLASSES), "config": config.to_dict()}
    folder = tmp_path_factory.mktemp("image_models") / "shapes"
    save(CnnAttention(config).eval(), card, folder)
    return folder


def _text_error(name: str) -> str:
    with pytest.raises(attnviz.ModelLoadError) as info:
        attnviz.load_text_model(name, device="cpu")
    return str(info.value)


def _image_error(name: str) -> str:
    with pytest.raises(attnviz.ModelLoadError) as info:
        attnviz.load_image_model(name, device="cpu")
    return str(info.value)


# ------------------------------------------------------------------- classification


@pytest.mark.parametrize("name", [None, "", "   ", BUNDLED_TEXT_MODEL, f"  {BUNDLED_TEXT_MODEL} "])
def test_bundled_names(name):
    source = resolve_model_source(name, BUNDLED_TEXT_MODEL)
    assert source.kind == BUNDLED and source.name == BUNDLED_TEXT_MODEL


def test_a_folder_is_resolved(tiny_bert_dir):
    source = resolve_model_source(f" {tiny_bert_dir} ", BUNDLED_TEXT_MODEL)
    assert source.kind == FOLDER
    assert source.name == str(tiny_bert_dir)
    assert source.path == tiny_bert_dir.resolve()


def test_home_and_dot_dot_are_normalised(tiny_bert_dir, monkeypatch):
    monkeypatch.setenv("HOME", str(tiny_bert_dir.parent))
    assert resolve_model_source(f"~/{tiny_bert_dir.name}", "b").path == tiny_bert_dir.resolve()
    dotted = f"{tiny_bert_dir.parent}/vocab/../{tiny_bert_dir.name}"
    assert resolve_model_source(dotted, "b").path == tiny_bert_dir.resolve()
    monkeypatch.chdir(tiny_bert_dir.parent)
    assert resolve_model_source(tiny_bert_dir.name, "b").path == tiny_bert_dir.resolve()  # exists: a folder


@pytest.mark.parametrize("name", ["bert-base-uncased", "google/vit-base-patch16-224", "org/model.v2"])
def test_hub_ids(name):
    source = resolve_model_source(name, BUNDLED_TEXT_MODEL)
    assert source.kind == HUB and source.location == name
    assert source.offline  # the tests run with HF_HUB_OFFLINE=1
    assert source.hub_kwargs == {"local_files_only": True}


def test_names_that_look_like_paths_say_no_such_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    for name in [
        "/definitely/not/a/folder",
        "./nope",
        "../nope-xyz-123",
        "~/nope-xyz-123",
        str(tmp_path / "nope"),
        "models/nope",  # a slash after a folder that exists: a path, not org/name
        "a/b/c",  # two slashes: never a hub id
    ]:
        message = _text_error(name)
        assert "no such folder" in message, (name, message)
        assert name in message and BUNDLED_TEXT_MODEL in message
        assert "hub" not in message


def test_a_file_is_not_a_folder(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    assert "is a file, not a folder" in _text_error(str(path))


@pytest.mark.parametrize("name", ["not a valid id!", "a--b", "x" * 200])
def test_invalid_hub_ids(name):
    message = _text_error(name)
    assert "neither a folder" in message and "hub id" in message
    assert BUNDLED_TEXT_MODEL in message


def test_control_characters_are_refused():
    assert "control characters" in _text_error("bert\x00base")
    assert "control characters" in _text_error("/tmp/\nmodel")


# ------------------------------------------------------------------- the policy


def test_allowed_folder_loads(tiny_bert_dir, image_model_dir, monkeypatch, tmp_path):
    monkeypatch.setenv(DIRS_ENV, os.pathsep.join([str(tmp_path), str(tiny_bert_dir.parent), ""]))
    tm = attnviz.load_text_model(str(tiny_bert_dir), device="cpu")
    assert tm.n_layers == 2 and tm.name == str(tiny_bert_dir)
    monkeypatch.setenv(DIRS_ENV, str(image_model_dir.parent))
    im = attnviz.load_image_model(str(image_model_dir), device="cpu")
    assert im.kind == "cnn-attention" and im.grid == (8, 8)


def test_folder_outside_the_allowed_ones_is_refused(tiny_bert_dir, image_model_dir, monkeypatch, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv(DIRS_ENV, str(allowed))
    for message in (_text_error(str(tiny_bert_dir)), _image_error(str(image_model_dir))):
        assert "outside the folders this server loads models from" in message
        assert str(allowed.resolve()) in message  # what is allowed
        assert DIRS_ENV in message  # which setting changes it
        assert "bundled model" in message


def test_path_traversal_out_of_the_allowed_folder_is_refused(tiny_bert_dir, monkeypatch, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv(DIRS_ENV, str(allowed))
    # Starts with the allowed folder as a string, but '..' leads out of it.
    dotted = str(allowed) + "/.." * len(allowed.resolve().parts) + str(tiny_bert_dir.resolve())
    assert os.path.realpath(dotted) == str(tiny_bert_dir.resolve())
    assert "outside the folders" in _text_error(dotted)


def test_symlink_out_of_the_allowed_folder_is_refused(tiny_bert_dir, image_model_dir, monkeypatch, tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "text").symlink_to(tiny_bert_dir, target_is_directory=True)
    (allowed / "image").symlink_to(image_model_dir, target_is_directory=True)
    monkeypatch.setenv(DIRS_ENV, str(allowed))
    assert "outside the folders" in _text_error(str(allowed / "text"))
    assert "outside the folders" in _image_error(str(allowed / "image"))
    # A link that stays inside the allowed folder is fine.
    shutil.copytree(tiny_bert_dir, allowed / "real")
    (allowed / "inner").symlink_to(allowed / "real", target_is_directory=True)
    assert attnviz.load_text_model(str(allowed / "inner"), device="cpu").n_heads == 4


def test_missing_folder_outside_the_allowed_ones_says_outside_not_missing(monkeypatch, tmp_path):
    """A visitor cannot probe which folders exist outside the allowed ones."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv(DIRS_ENV, str(allowed))
    assert "outside the folders" in _text_error("/no/such/folder")
    assert "outside the folders" in _text_error("/etc")
    assert "no such folder" in _text_error(str(allowed / "nope"))


@pytest.mark.parametrize("setting", ["local-off", "dirs", "local-and-hub-off"])
@pytest.mark.parametrize("existing,missing", [("tests", "zzzz"), ("tests/model", "zzzz/model")])
def test_an_existing_path_and_a_missing_one_get_the_same_answer(setting, existing, missing, tmp_path, monkeypatch):
    """A visitor cannot learn which relative paths exist on the server from the message."""
    work, allowed = tmp_path / "work", tmp_path / "allowed"
    (work / "tests").mkdir(parents=True)
    allowed.mkdir()
    monkeypatch.chdir(work)
    if setting == "dirs":
        monkeypatch.setenv(DIRS_ENV, str(allowed))
    else:
        monkeypatch.setenv(LOCAL_ENV, "off")
    if setting == "local-and-hub-off":
        monkeypatch.setenv(HUB_ENV, "off")
    for errors in (_text_error, _image_error):
        message = errors(missing)
        assert errors(existing).replace(existing, "NAME") == message.replace(missing, "NAME")
        if setting == "dirs":  # says how folders are given here
            assert f"a model folder inside {allowed.resolve()} (type its full path)" in message
        elif setting == "local-off":
            assert f"{LOCAL_ENV}=off" in message and "Use a local model folder" not in message
        else:
            assert "Allowed here: the bundled model '" in message and "folder" not in message

    def picker(name):
        try:
            return model_source.check_model_name(name, BUNDLED_TEXT_MODEL).kind
        except attnviz.ModelLoadError as exc:
            return str(exc).replace(name, "NAME")

    assert picker(existing) == picker(missing)


def test_an_allowed_folder_is_still_found_by_a_relative_path(tiny_bert_dir, monkeypatch):
    """Inside the allowed folders a relative path is a folder, as before (nothing there is secret)."""
    monkeypatch.setenv(DIRS_ENV, str(tiny_bert_dir.parent))
    monkeypatch.chdir(tiny_bert_dir.parent)
    assert resolve_model_source(tiny_bert_dir.name, BUNDLED_TEXT_MODEL).kind == FOLDER
    assert "no such folder" in _text_error(f"{tiny_bert_dir.name}/nope")


def test_local_folders_off(tiny_bert_dir, image_model_dir, monkeypatch):
    monkeypatch.setenv(LOCAL_ENV, "off")
    monkeypatch.setenv(DIRS_ENV, str(tiny_bert_dir.parent))  # off wins over an allowed list
    for message in (_text_error(str(tiny_bert_dir)), _image_error(str(image_model_dir)), _text_error("/etc")):
        assert f"does not load models from local folders ({LOCAL_ENV}=off)" in message
        assert f"{LOCAL_ENV}=on" in message
        assert "Allowed here: the bundled model" in message and "Hugging Face hub ids" in message
    assert resolve_model_source(None, BUNDLED_TEXT_MODEL).kind == BUNDLED  # the bundled model still loads
    assert resolve_model_source("bert-base-uncased", BUNDLED_TEXT_MODEL).kind == HUB


def test_hub_off(tiny_bert_dir, monkeypatch):
    monkeypatch.setenv(HUB_ENV, "OFF")
    for message in (_text_error("bert-base-uncased"), _image_error("google/vit-base-patch16-224")):
        assert f"does not download models from the Hugging Face hub ({HUB_ENV}=off)" in message
        assert f"{HUB_ENV}=on" in message
        assert "any local model folder" in message
    assert attnviz.load_text_model(str(tiny_bert_dir), device="cpu").n_layers == 2


def test_everything_off_leaves_the_bundled_model():
    policy = Policy(local=False, hub=False)
    assert policy.allowed("m") == "Allowed here: the bundled model 'm'."
    with pytest.raises(attnviz.ModelLoadError):
        resolve_model_source("bert-base-uncased", "m", policy=policy)


@pytest.mark.parametrize("key", [LOCAL_ENV, HUB_ENV])
def test_a_malformed_setting_refuses_everything_but_the_bundled_model(key, tiny_bert_dir, monkeypatch):
    monkeypatch.setenv(key, "maybe")
    message = _text_error(str(tiny_bert_dir))
    assert key in message and "'maybe'" in message and "on or off" in message
    assert resolve_model_source("", BUNDLED_TEXT_MODEL).kind == BUNDLED


@pytest.mark.parametrize("value,expected", [("on", True), ("1", True), ("Yes", True), ("", True), ("no", False)])
def test_switch_values(value, expected):
    assert Policy.from_env({LOCAL_ENV: value}).local is expected
    assert Policy.from_env({HUB_ENV: value}).hub is expected


# ------------------------------------------------------------------- the hub, offline


def test_offline_hub_id_gives_a_clear_message_at_once():
    start = time.monotonic()
    for message in (_text_error("no-such-org/no-such-model-xyz"), _image_error("google/vit-base-patch16-224")):
        assert "hub cannot be reached" in message
        assert "HF_HUB_OFFLINE" in message
        assert "local model folder" in message and "bundled model" in message
    assert time.monotonic() - start < 10


def test_unreachable_hub_is_tried_from_the_cache_only(monkeypatch):
    """Without offline mode, a hub that does not answer gives the same message, without retries."""
    monkeypatch.setattr(model_source, "hub_offline_mode", lambda: False)
    monkeypatch.setattr(model_source, "hub_reachable", lambda timeout=0: False)
    source = resolve_model_source("bert-base-uncased", BUNDLED_TEXT_MODEL)
    assert source.offline and source.hub_kwargs == {"local_files_only": True}
    start = time.monotonic()
    message = _text_error("bert-base-uncased")
    assert "hub cannot be reached from this server (no connection to the hub)" in message
    assert time.monotonic() - start < 10


def test_hub_probe_gives_up_quickly(monkeypatch):
    from huggingface_hub import constants

    assert model_source.hub_reachable() is False  # offline mode: no probe at all
    monkeypatch.setattr(model_source, "hub_offline_mode", lambda: False)
    for key in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setattr(model_source, "_probe_cache", {})
    start = time.monotonic()
    assert model_source.hub_reachable(timeout=2.0) is False
    assert time.monotonic() - start < 3


# ------------------------------------------------------------------- no pickles


def _forbid_torch_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called on a model file")

    monkeypatch.setattr(torch, "load", refuse)


def test_a_folder_with_only_pickled_weights_is_refused(tmp_path, tiny_bert_dir, monkeypatch):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_bert_dir, folder)
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    _forbid_torch_load(monkeypatch)
    message = _text_error(str(folder))
    assert "pytorch_model.bin" in message and "pickle" in message
    assert "save_pretrained" in message and BUNDLED_TEXT_MODEL in message


def test_a_vit_folder_with_only_pickled_weights_is_refused(tmp_path, monkeypatch):
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37
    )
    folder = tmp_path / "vit"
    model = ViTForImageClassification(config)
    model.save_pretrained(str(folder))
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    _forbid_torch_load(monkeypatch)
    message = _image_error(str(folder))
    assert "pytorch_model.bin" in message and "pickle" in message and BUNDLED_IMAGE_MODEL in message


class _Planted:
    """Unpickling this writes a marker file: proof that a pickle was opened, whatever loader opened it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _spy_torch_load(monkeypatch) -> list:
    """Record every torch.load call (and refuse it), so a test can assert that none happened."""
    calls = []

    def spy(*args, **kwargs):
        calls.append(args[:1])
        raise AssertionError("torch.load was called on a model file")

    monkeypatch.setattr(torch, "load", spy)
    return calls


def _tiny_vit(folder):
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37
    )
    ViTForImageClassification(config).save_pretrained(str(folder))
    return folder


def _plant_pickle(folder, name):
    """A pickle file in the folder whose unpickling would leave ``folder/unpickled``."""
    import pickle

    (folder / name).write_bytes(pickle.dumps({"weight": _Planted(folder / "unpickled")}))


def _route_config_names_a_bin(folder):
    _plant_pickle(folder, "adapter_model.bin")
    config = json.loads((folder / "config.json").read_text())
    config["transformers_weights"] = "adapter_model.bin"
    (folder / "config.json").write_text(json.dumps(config))
    return "adapter_model.bin"


def _route_index_points_at_a_bin(folder):
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
    (folder / "model.safetensors").unlink()
    _plant_pickle(folder, "pytorch_model-00001-of-00001.bin")
    index = {"metadata": {}, "weight_map": dict.fromkeys(keys, "pytorch_model-00001-of-00001.bin")}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return "pytorch_model-00001-of-00001.bin"


def _route_config_names_an_index_of_bins(folder):
    name = _route_index_points_at_a_bin(folder)
    (folder / "model.safetensors.index.json").rename(folder / "custom.safetensors.index.json")
    config = json.loads((folder / "config.json").read_text())
    config["transformers_weights"] = "custom.safetensors.index.json"
    (folder / "config.json").write_text(json.dumps(config))
    return name


ROUTES = [_route_config_names_a_bin, _route_index_points_at_a_bin, _route_config_names_an_index_of_bins]


@pytest.mark.parametrize("kind", ["text", "image"])
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.__name__.removeprefix("_route_"))
def test_no_route_opens_a_pickle(kind, route, tmp_path, tiny_bert_dir, monkeypatch):
    """use_safetensors=True alone lets a config.json or an index send transformers to a .bin file."""
    folder = tmp_path / "model"
    if kind == "text":
        shutil.copytree(tiny_bert_dir, folder)
    else:
        _tiny_vit(folder)
    pickled = route(folder)
    calls = _spy_torch_load(monkeypatch)
    message = _text_error(str(folder)) if kind == "text" else _image_error(str(folder))
    assert calls == [] and not (folder / "unpickled").exists()
    assert pickled in message and "safetensors" in message and "pickle" in message
    assert "convert" in message.lower()  # what to do


@pytest.mark.parametrize("kind", ["text", "image"])
def test_an_index_cannot_lead_out_of_the_folder(kind, tmp_path, tiny_bert_dir):
    """A weight_map entry with '..' or an absolute path would make transformers read a file elsewhere."""
    folder = tmp_path / "model"
    if kind == "text":
        shutil.copytree(tiny_bert_dir, folder)
    else:
        _tiny_vit(folder)
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
    (folder / "model.safetensors").rename(tmp_path / "elsewhere.safetensors")
    index = {"metadata": {}, "weight_map": dict.fromkeys(keys, "../elsewhere.safetensors")}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    message = _text_error(str(folder)) if kind == "text" else _image_error(str(folder))
    assert "../elsewhere.safetensors" in message and "outside" in message


def test_safetensors_shards_still_load(tmp_path, tiny_bert_dir):
    """The check refuses pickles, not sharded safetensors checkpoints."""
    from transformers import AutoModel

    folder = tmp_path / "sharded"
    shutil.copytree(tiny_bert_dir, folder)
    (folder / "model.safetensors").unlink()
    model = AutoModel.from_pretrained(str(tiny_bert_dir), use_safetensors=True, trust_remote_code=False)
    model.save_pretrained(str(folder), max_shard_size="20KB")
    assert (folder / "model.safetensors.index.json").exists() and not (folder / "model.safetensors").exists()
    tm = attnviz.load_text_model(str(folder), device="cpu")
    torch.testing.assert_close(tm.model.embeddings.word_embeddings.weight, model.embeddings.word_embeddings.weight)


def test_the_backstop_refuses_a_pickle_that_transformers_resolves(tmp_path, tiny_bert_dir, monkeypatch):
    """Routes the folder check does not know (a hub repo, say) are stopped where transformers lists its files."""
    from transformers import AutoModel

    from attnviz.weight_files import safetensors_only

    folder = tmp_path / "model"
    shutil.copytree(tiny_bert_dir, folder)
    name = _route_config_names_a_bin(folder)
    calls = _spy_torch_load(monkeypatch)
    with pytest.raises(attnviz.ModelLoadError, match=name), safetensors_only("a model"):
        AutoModel.from_pretrained(str(folder), use_safetensors=True, trust_remote_code=False)
    assert calls == []
    with pytest.raises(AssertionError, match="torch.load was called"):  # outside the guard: transformers' own way
        AutoModel.from_pretrained(str(folder), use_safetensors=True, trust_remote_code=False)


# ------------------------------------------------------------------- no remote code

CUSTOM_CODE = """
import pathlib
pathlib.Path(__file__).resolve().parent.joinpath("custom_code_ran").write_text("yes")
from transformers import BertConfig, BertModel


class CustomConfig(BertConfig):
    model_type = "attnviz-custom"


class CustomModel(BertModel):
    config_class = CustomConfig
"""


def _custom_code_folder(tmp_path, source_folder, model_type):
    """A folder whose config.json asks transformers to import its own custom.py (auto_map)."""
    folder = tmp_path / "custom"
    shutil.copytree(source_folder, folder)
    (folder / "custom.py").write_text(CUSTOM_CODE)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {
        "AutoConfig": "custom.CustomConfig",
        "AutoModel": "custom.CustomModel",
        "AutoModelForImageClassification": "custom.CustomModel",
        "AutoTokenizer": ["custom.CustomTokenizer", None],
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    "kind,model_type", [("text", "attnviz-custom"), ("image", "attnviz-custom"), ("text", "bert"), ("image", "vit")]
)
def test_custom_code_never_prompts_and_never_runs(kind, model_type, tmp_path, tiny_bert_dir, monkeypatch):
    """Without trust_remote_code=False, transformers asks "Do you wish to run the custom code?" on the terminal.

    An unknown model type is refused with a message; a known one loads with transformers' own code.
    """
    import builtins

    prompts = []

    def answer_yes(prompt=""):
        prompts.append(prompt)
        return "y"

    monkeypatch.setattr(builtins, "input", answer_yes)
    source = tiny_bert_dir if kind == "text" else _tiny_vit(tmp_path / "vit")
    folder = _custom_code_folder(tmp_path, source, model_type)
    if model_type == "attnviz-custom":
        message = _text_error(str(folder)) if kind == "text" else _image_error(str(folder))
        assert "never runs code that comes with a model" in message and "auto_map" in message
        assert str(folder) in message
    else:
        load = attnviz.load_text_model if kind == "text" else attnviz.load_image_model
        assert load(str(folder), device="cpu").n_heads == 4
    assert prompts == []
    assert not (folder / "custom_code_ran").exists()


# ------------------------------------------------------------------- the app's picker


@pytest.mark.bundled
@pytest.mark.parametrize("setting", ["dirs", "local-off"])
def test_text_page_picker_refuses_a_disallowed_folder(setting, tiny_bert_dir, monkeypatch, tmp_path):
    from tests.pages.apptest_helpers import assert_clean, charts, start_clean

    if setting == "dirs":
        monkeypatch.setenv(DIRS_ENV, str(tmp_path))
        expected = md_escape(DIRS_ENV)
    else:
        monkeypatch.setenv(LOCAL_ENV, "off")
        expected = md_escape(f"{LOCAL_ENV}=off")
    at = start_clean("pages/text.py")
    at.text_input(key="model_name_input").input(str(tiny_bert_dir))
    at.form_submit_button[0].click().run()
    assert_clean(at)
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and expected in warnings[0]
    assert "6 layers × 12 heads" in "\n".join(c.value for c in at.caption)  # still the bundled model
    assert "text_model_name" not in at.session_state or at.session_state["text_model_name"] == BUNDLED_TEXT_MODEL
    assert len(charts(at)) == 1


@pytest.mark.bundled
def test_image_page_picker_refuses_a_disallowed_folder(image_model_dir, monkeypatch, tmp_path):
    from tests.pages.apptest_helpers import assert_clean, start_clean

    monkeypatch.setenv(DIRS_ENV, str(tmp_path))
    at = start_clean("pages/image.py")
    at.text_input(key="image_model_input").input(str(image_model_dir))
    at.form_submit_button[0].click().run()
    assert_clean(at)
    assert any(md_escape(DIRS_ENV) in w.value for w in at.warning)
    assert "image_model_name" not in at.session_state or at.session_state["image_model_name"] == BUNDLED_IMAGE_MODEL


def test_the_pickers_policy_check_never_probes_the_hub(monkeypatch):
    """The pickers check the kept name on every rerun: that must not wait on the network."""
    import attnviz.model_source as model_source

    def no_probe(*args, **kwargs):
        raise AssertionError("the hub was probed")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(model_source, "hub_reachable", no_probe)
    assert model_source.check_model_name("bert-base-uncased", BUNDLED_TEXT_MODEL).kind == HUB
