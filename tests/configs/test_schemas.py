"""The planner presets and the trainers' recipes are typed by their dataclasses: YAML and code cannot disagree."""

import dataclasses

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from vjepa_planning.configs import CONFIG_DIR, compose_config
from vjepa_planning.control.build import planner_config
from vjepa_planning.planners import PlannerConfig
from vjepa_planning.worldmodel.lewm.train import LeWMTrainConfig
from vjepa_planning.worldmodel.pretrain import PretrainConfig, pretrain_config
from vjepa_planning.worldmodel.train import TrainConfig


def test_the_cem_preset_is_the_dataclass_defaults():
    cfg = compose_config("plan_goal", ["planner=cem"]).planner
    assert planner_config(cfg) == PlannerConfig()  # every sampling setting comes from the dataclass
    own = set(OmegaConf.load(CONFIG_DIR / "planner" / "cem.yaml")) - {"defaults"}
    assert own == {"name", "context_frames"}  # cem.yaml repeats no default


def test_plan_goal_and_sim_benchmark_default_to_the_same_planner():
    goal, bench = compose_config("plan_goal").planner, compose_config("sim_benchmark").planner
    assert goal.name == "icem" and goal == bench  # what sim-benchmark measures is what plan-goal runs


@pytest.mark.parametrize("preset", ["icem", "cem_grad", "mppi"])
def test_presets_differ_from_the_defaults_only_where_their_yaml_says(preset):
    cfg = compose_config("plan_goal", [f"planner={preset}"]).planner
    changed = {f.name for f in dataclasses.fields(PlannerConfig) if cfg[f.name] != getattr(PlannerConfig(), f.name)}
    own = set(OmegaConf.load(CONFIG_DIR / "planner" / f"{preset}.yaml")) - {"defaults", "name"}
    assert changed == own


def test_a_typo_or_a_wrong_type_is_refused_when_composing():
    with pytest.raises(ConfigCompositionException, match="nmu_samples"):
        compose_config("plan_goal", ["planner.nmu_samples=64"])
    with pytest.raises(ConfigCompositionException, match="num_samples"):
        compose_config("plan_goal", ["planner.num_samples=many"])
    appended = compose_config("plan_goal", ["+planner.nmu_samples=64"]).planner  # Hydra lets "+" append ...
    with pytest.raises(ValueError, match="unknown setting.*nmu_samples"):
        planner_config(appended)  # ... and building the planner refuses it


@pytest.mark.parametrize("command, recipe, cls", [
    ("post_train", "post_train_sim", TrainConfig), ("pretrain_encoder", "pretrain_sim", PretrainConfig),
    ("train_lewm", "lewm_sim", LeWMTrainConfig),
])
def test_training_recipes_are_their_dataclass_defaults(command, recipe, cls):
    cfg = compose_config(command)
    train = OmegaConf.to_container(cfg.train, resolve=True)
    if cls is PretrainConfig:
        built = pretrain_config(train, int(cfg.seed))
    else:
        built = cls(**{**train, "betas": tuple(train["betas"])}, seed=int(cfg.seed))
    assert built == cls(seed=int(cfg.seed))
    assert set(OmegaConf.load(CONFIG_DIR / "train" / f"{recipe}.yaml")) == {"defaults"}  # no default repeated
    with pytest.raises(ConfigCompositionException, match="stpes"):
        compose_config(command, ["train.stpes=10"])
    assert compose_config(command, ["train.steps=10"]).train.steps == 10


@pytest.mark.parametrize("cls", [PlannerConfig, TrainConfig, PretrainConfig, LeWMTrainConfig])
def test_a_schema_resolves_its_annotations_in_its_configs_module(cls):
    """Python 3.12's make_dataclass sets the caller's module; the schema's string annotations (e.g.
    PretrainConfig's tuple[BlockMaskSpec, ...]) must resolve where the config class was written."""
    import typing

    from vjepa_planning.configs import schema

    made = schema(cls)
    assert made.__module__ == cls.__module__
    assert set(typing.get_type_hints(made)) == {f.name for f in dataclasses.fields(cls)}
