"""Training: config, optimisers and schedules, checkpoints, distributed, the loop."""
from densepose.engine.config import TrainConfig, load_config
from densepose.engine.train import train

__all__ = ["TrainConfig", "load_config", "train"]
