"""CIFAR-10 from a folder in the python format (written here, tiny), and the models on its
3x32x32 images: FedAvg's CNN and LeNet-5 follow the dataset's input shape."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from sinsim.errors import DatasetUnavailable, InputError
from sinsim.learn.datasets import CIFAR10_DIR, load_dataset, read_cifar_batch
from sinsim.learn.models import build_model, forward_flops_per_sample
from sinsim.scenario import validate_scenario
from sinsim.sim.engine import run_scenario

N_TRAIN_PER_BATCH, N_TEST = 10, 20  # 5 batches: 50 training images


def write_cifar(root, seed=0, n_per_batch=N_TRAIN_PER_BATCH, n_test=N_TEST):
    """A CIFAR-10 folder in the python format (pickled dicts, as the real batches)."""
    rng = np.random.default_rng(seed)
    folder = root / CIFAR10_DIR
    folder.mkdir(parents=True)
    names = [(f"data_batch_{i}", n_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]
    for name, n in names:
        batch = {b"batch_label": name.encode(),
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, n)],
                 b"filenames": [f"img{i}.png".encode() for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return root


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    return write_cifar(tmp_path_factory.mktemp("cifar"))


def test_cifar10_loads_the_batches_as_normalised_3x32x32_images(cifar_dir):
    # Execute
    data = load_dataset("cifar10", cifar_dir, download=False)

    # Assert: 5 batches of 10 train, the test batch, channel-major pixels normalised per channel
    assert (data.n_train, data.n_test, data.input_shape) == (50, 20, (3, 32, 32))
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.long
    assert data.source.startswith("cifar10:local:")
    with open(cifar_dir / CIFAR10_DIR / "data_batch_2", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    pixel = raw[b"data"][3].reshape(3, 32, 32)[:, 5, 7] / 255.0  # image 13 of the train set
    mean = np.array([0.4914, 0.4822, 0.4465])
    std = np.array([0.2470, 0.2435, 0.2616])
    np.testing.assert_allclose(data.x_train[13, :, 5, 7].numpy(), (pixel - mean) / std,
                               rtol=1e-5, atol=1e-6)
    assert data.y_train[13] == raw[b"labels"][3]


def test_read_cifar_batch_refuses_a_pickle_that_would_run_code(tmp_path):
    # Prepare: a pickle that would call os.system when loaded
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("true",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))

    # Execute / Assert
    with pytest.raises(DatasetUnavailable, match="not a CIFAR-10 batch"):
        read_cifar_batch(path)


def test_read_cifar_batch_rejects_images_of_another_size(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 784), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(DatasetUnavailable, match="uint8 \\[N, 3072\\]"):
        read_cifar_batch(path)


def test_cifar10_without_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("cifar10", tmp_path, download=False)
    message = str(info.value)
    assert isinstance(info.value, InputError)  # exit status 2
    assert str(tmp_path / CIFAR10_DIR) in message
    assert "training.data_dir" in message and "cifar-10-python.tar.gz" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "shape", "params"), [
    ("cnn", (1, 28, 28), 1_663_370),  # McMahan et al. 2017's count for their MNIST CNN
    ("cnn", (3, 32, 32), 2_156_490),
    ("lenet5", (1, 28, 28), 431_080),
    ("lenet5", (3, 32, 32), 657_080),
])
def test_models_follow_the_input_shape(name, shape, params):
    model = build_model(name, 0, shape)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model(torch.zeros(4, *shape)).shape == (4, 10)


def test_cnn_flops_count_the_dataset_shape():
    # conv1, conv2 at full resolution ('same' padding), then fc 4096->512 and 512->10
    model = build_model("cnn", 0, (3, 32, 32))
    expected = 2 * (3 * 25 * 32 * 32 * 32 + 32 * 25 * 64 * 16 * 16 + 4096 * 512 + 512 * 10)
    assert forward_flops_per_sample(model, (3, 32, 32)) == expected


def test_one_round_on_cifar10_with_the_cnn(cifar_dir, tmp_path):
    # Prepare: 4 abstract clients, 1 round, on the written CIFAR-10 folder
    scenario = validate_scenario({
        "name": "cifar_tiny", "clients": {"count": 4},
        "training": {"dataset": "cifar10", "data_dir": str(cifar_dir), "download": False,
                     "model": "cnn", "rounds": 1, "clients_per_round": 2, "batch_size": 5,
                     "partition": {"kind": "dirichlet", "alpha": 1.0}, "workers": 1},
    })

    # Execute
    summary = run_scenario(scenario, tmp_path / "out")

    # Assert
    assert summary["status"] == "complete"
    assert summary["dataset"]["n_train"] == 50
    assert summary["algorithms"]["fedavg"]["rounds_run"] == 1
    assert 0.0 <= summary["algorithms"]["fedavg"]["final_accuracy"] <= 1.0
