"""File settings: `shipped:<file>` is the installed package's, whatever the working directory holds; any
other value is the user's path, relative to the working directory, named with its setting when missing."""

from __future__ import annotations

import pytest

from vjepa_planning.configs import compose_config
from vjepa_planning.configs.paths import resolve_path, shipped_dir, shipped_files


def test_shipped_files_are_the_packages_and_a_stray_checkpoints_folder_does_not_shadow_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "predictor_sim_workspace.safetensors").write_bytes(b"not weights")
    path = resolve_path("shipped:predictor_sim_workspace.safetensors", "world_model.predictor")
    assert path.parent == shipped_dir() and path.stat().st_size > 1000
    assert "predictor_sim_workspace.safetensors" in shipped_files()


def test_every_shipped_default_resolves_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sim = compose_config("plan_goal").world_model
    lewm = compose_config("plan_goal", ["world_model=lewm"]).world_model
    post = compose_config("post_train")
    for value, setting in ((sim.encoder, "world_model.encoder"), (sim.predictor, "world_model.predictor"),
                           (lewm.path, "world_model.path"), (post.encoder_path, "encoder_path")):
        assert value.startswith("shipped:") and resolve_path(value, setting).is_file()


def test_user_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.safetensors").write_bytes(b"x")
    assert resolve_path("mine.safetensors", "world_model.path") == tmp_path / "mine.safetensors"
    assert resolve_path(str(tmp_path / "mine.safetensors"), "world_model.path") == tmp_path / "mine.safetensors"
    assert resolve_path("out/new.safetensors", "out", must_exist=False) == tmp_path / "out" / "new.safetensors"


@pytest.mark.parametrize("value", ["shipped:nope.safetensors", "shipped:../README.md", "shipped:", "missing.safetensors"])
def test_a_bad_file_setting_names_the_setting_and_the_value(tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        resolve_path(value, "world_model.encoder")
    msg = str(e.value)
    assert msg.startswith("world_model.encoder: ") and (value in msg or str(tmp_path / value) in msg)
    assert "\n" not in msg
