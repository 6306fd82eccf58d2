"""The engines' job map on Ray (a local instance): an unknown engine is refused, and a job whose worker died
after its effect was there is not run again while one that died before it is. sim-benchmark and
collect-trajectories on Ray are tested in tests/apps/test_ray_engine.py."""

from __future__ import annotations

import os

import pytest

from vjepa_planning.control.engines import map_unordered

RAY = "Ray is an optional extra: pip install '.[ray]' (the dev extra has it)"


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine must be one of pool, ray, got 'spark'"):
        list(map_unordered(print, (), abs, [1], workers=1, engine="spark"))


def test_a_retried_job_whose_effect_is_there_is_not_run_again(tmp_path):
    """The retry rule itself: a worker dies once after its job's effect (a file here, an episode commit in
    collection) and once before it; the first job is not run again, the second is, each result once."""
    pytest.importorskip("ray", reason=RAY)
    marks = tmp_path / "marks"
    marks.mkdir()

    def init():
        pass

    def job(name):  # runs in a Ray worker (pickled by value: a local function)
        attempt = marks / f"{name}.attempt"
        first = not attempt.exists()
        attempt.touch()
        if name == "dies_after" and first:
            (marks / f"{name}.done").touch()
            os._exit(1)
        if name == "dies_before" and first:
            os._exit(1)
        (marks / f"{name}.done").touch()
        (marks / f"{name}.runs").open("a").write("x")
        return name

    def already_done(name):
        return (marks / f"{name}.done").exists()

    got = list(map_unordered(init, (), job, ["dies_after", "dies_before", "fine"], workers=2, engine="ray",
                             already_done=already_done))
    assert sorted(g for g in got if g) == ["dies_before", "fine"] and got.count(None) == 1
    assert not (marks / "dies_after.runs").exists()  # its effect was there: not run again
    assert (marks / "dies_before.runs").read_text() == "x" and (marks / "fine.runs").read_text() == "x"
