"""WHAT is computed and sent: datasets, models, training, codecs and strategies (pure PyTorch)."""

from sinsim.learn.codecs import CODECS, Float32Codec, ModelSpec
from sinsim.learn.datasets import Dataset, load_dataset
from sinsim.learn.models import MODELS, LeNet5, build_model, training_flops_per_sample
from sinsim.learn.partitions import partition_dirichlet, partition_iid
from sinsim.learn.strategies import STRATEGIES, FedAvg, RoundContext, build_strategy
from sinsim.learn.training import LocalTrainer, TrainConfig

__all__ = [
    "CODECS", "MODELS", "STRATEGIES", "Dataset", "FedAvg", "Float32Codec", "LeNet5",
    "LocalTrainer", "ModelSpec", "RoundContext", "TrainConfig", "build_model", "build_strategy",
    "load_dataset", "partition_dirichlet", "partition_iid", "training_flops_per_sample",
]
