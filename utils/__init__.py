"""Shared by the algorithm files: environments (`utils.envs`) and datasets (`utils.datasets`)."""
