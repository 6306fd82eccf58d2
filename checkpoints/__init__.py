"""The shipped weights (safetensors) and their model cards: package data, found through importlib.resources
by `configs.paths.resolve_path` from a config value `shipped:<file>`."""
