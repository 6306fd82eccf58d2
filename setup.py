"""The installed layout: every top-level folder of this checkout is a subpackage of `vjepa_planning`, so
nothing generic (`apps`, `configs`, `envs`, ...) lands in site-packages. The checkout keeps its folders;
only the import names carry the namespace. Everything else about the package is in pyproject.toml."""

from setuptools import find_packages, setup

NAMESPACE = "vjepa_planning"
FOLDERS = ["robot_pose", "worldmodel", "planners", "envs", "robot_drivers", "control", "apps", "configs", "checkpoints"]
DATA = {"configs": ["**/*.yaml"], "checkpoints": ["*.safetensors", "*.md"]}

packages = [f"{NAMESPACE}.{p}" for p in find_packages(include=[f"{f}*" for f in FOLDERS])]
setup(
    packages=packages,
    package_dir={f"{NAMESPACE}.{f}": f for f in FOLDERS},
    package_data={f"{NAMESPACE}.{f}": globs for f, globs in DATA.items()},
)
