"""PyTorch reference for the batch-size experiment (protocol A, matched training loss).

    python bench/lab_torch.py                       # digits and noisy-binary, seeds 0-2
    python bench/lab_torch.py --quick               # smoke test: digits, seed 0, 300 steps, target 0.05
    python bench/lab_torch.py --datasets digits --seeds 1 --json out.json

What it does. For each data set and seed, a float64 MLP (d-64-64-K, ReLU, PyTorch's default
nn.Linear init after torch.manual_seed(seed)) is trained with plain SGD (lr 0.1) at batch sizes
8, 32, 128, 512 and full batch until the mean training loss is below the target (1e-3) or
20,000 parameter updates have been made. Minibatch runs check the loss after every epoch (a
fresh permutation each epoch; the cap may stop a run inside an epoch); the full-batch run checks
the loss it computes anyway before each step, so a run stops before stepping once it is below
the target. At the final parameters it measures, on the training objective: the top Hessian
eigenvalue (Lanczos, full reorthogonalisation, double-backward Hessian-vector products), the
Hessian trace (Hutchinson, 20 Rademacher probes), epsilon-sharpness (eps 1e-3, 20 projected
sign-gradient ascent steps in the box eps(|theta|+1)), train/test loss along 3 filter-normalised
random directions (21 points in [-1, 1]) with the scalar slice_rise, and the parameter norm.
Afterwards it evaluates train/test loss on the line through the batch-8 and full-batch
solutions (41 points, t in [-0.5, 1.5]).

This is the peer that nncore's implementation of the same protocol is timed against, so it is
written the way a competent PyTorch user would write it and runs on ONE thread.

Timing. train_seconds covers the training loop only (forward, backward, step, and the loss
evaluations that the stopping rule needs). measure_seconds covers everything done at the final
parameters: the final train/test loss and accuracy, the curvature measurements, the slices,
and (per data set and seed) the interpolation, which is added to the totals. wall_seconds is
the whole of main() (after the imports), data loading included.

--json PATH writes {"runs": [...], "train_seconds", "measure_seconds", "wall_seconds"} plus,
for whoever wants the curves, "slices" (per run) and "interpolations" (per data set and seed).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.func import functional_call

# One thread: the comparison is single-core, and another process owns the other core.
# Interop threads must be set before any parallel work starts, hence at import time.
torch.set_num_threads(1)
torch.set_num_interop_threads(1)

DTYPE = torch.float64
BATCH_SIZES = (8, 32, 128, 512, "full")
HIDDEN = 64

# Measurement settings fixed by the protocol.
LANCZOS_MAX = 100  # Hessian-vector products at most
LANCZOS_TOL = 1e-3  # relative residual of the largest Ritz value
LANCZOS_CHECK = 5  # check convergence every this many steps
HUTCHINSON_PROBES = 20
SHARP_EPS = 1e-3
SHARP_ITERS = 20
SLICE_DIRECTIONS = 3
SLICE_ALPHAS = torch.linspace(-1.0, 1.0, 21, dtype=DTYPE)
SLICE_RISE_AT = 0.2
INTERP_T = torch.linspace(-0.5, 1.5, 41, dtype=DTYPE)


# --------------------------------------------------------------------------- data


class Data:
    """Train/test tensors of one data set, created once, plus its loss function."""

    def __init__(self, name, x_tr, y_tr, x_te, y_te, n_classes):
        self.name = name
        self.binary = n_classes == 2
        self.x_tr = torch.as_tensor(x_tr, dtype=DTYPE)
        self.x_te = torch.as_tensor(x_te, dtype=DTYPE)
        if self.binary:
            # One logit per row; BCEWithLogitsLoss wants float targets of the same shape.
            self.y_tr = torch.as_tensor(y_tr, dtype=DTYPE).unsqueeze(1)
            self.y_te = torch.as_tensor(y_te, dtype=DTYPE).unsqueeze(1)
            self.loss_fn = nn.BCEWithLogitsLoss()
            self.n_out = 1
        else:
            self.y_tr = torch.as_tensor(y_tr, dtype=torch.long)
            self.y_te = torch.as_tensor(y_te, dtype=torch.long)
            self.loss_fn = nn.CrossEntropyLoss()
            self.n_out = n_classes
        self.n_train, self.n_features = self.x_tr.shape

    def accuracy(self, logits, y):
        if self.binary:
            return ((logits > 0).to(DTYPE) == y).to(DTYPE).mean().item()
        return (logits.argmax(1) == y).to(DTYPE).mean().item()


def load(name):
    if name == "digits":
        x, y = load_digits(return_X_y=True)
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
        k = 10
    elif name == "noisy-binary":
        x, y = make_classification(
            n_samples=4000, n_features=20, n_informative=10, flip_y=0.05, random_state=0
        )
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.5, stratify=y, random_state=0)
        k = 2
    else:
        raise SystemExit(f"unknown data set {name!r} (digits, noisy-binary)")
    scaler = StandardScaler().fit(x_tr)
    return Data(name, scaler.transform(x_tr), y_tr, scaler.transform(x_te), y_te, k)


# --------------------------------------------------------------------------- model


def make_model(data, seed):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(data.n_features, HIDDEN, dtype=DTYPE),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN, dtype=DTYPE),
        nn.ReLU(),
        nn.Linear(HIDDEN, data.n_out, dtype=DTYPE),
    )


class Flat:
    """The model as a function of one flat parameter vector (for the measurements).

    unflatten() returns views into the vector, so functional_call differentiates straight
    through to it: one autograd leaf, no copies, and Hessian-vector products are plain
    vector operations.
    """

    def __init__(self, model, data):
        self.model = model
        self.data = data
        named = list(model.named_parameters())
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.numels = [p.numel() for _, p in named]

    def unflatten(self, theta):
        return {n: t.view(s) for n, t, s in zip(self.names, theta.split(self.numels), self.shapes)}

    def logits(self, theta, x):
        return functional_call(self.model, self.unflatten(theta), (x,))

    def train_loss(self, theta):
        return self.data.loss_fn(self.logits(theta, self.data.x_tr), self.data.y_tr)

    def test_loss(self, theta):
        return self.data.loss_fn(self.logits(theta, self.data.x_te), self.data.y_te)


# --------------------------------------------------------------------------- training


def train(model, data, batch_size, seed, lr, target, cap):
    """Plain SGD until train loss < target or cap steps. Returns (steps, seconds)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn, x, y, n = data.loss_fn, data.x_tr, data.y_tr, data.n_train
    steps = 0
    t0 = time.perf_counter()
    if batch_size == "full":
        while steps < cap:
            loss = loss_fn(model(x), y)
            if loss.item() < target:  # stop before stepping; this evaluation is free
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
    else:
        gen = torch.Generator().manual_seed(seed)
        while True:
            perm = torch.randperm(n, generator=gen)
            for start in range(0, n, batch_size):  # last partial batch included
                idx = perm[start : start + batch_size]
                loss = loss_fn(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
                if steps >= cap:
                    break
            with torch.no_grad():
                full = loss_fn(model(x), y).item()
            if full < target or steps >= cap:
                break
    return steps, time.perf_counter() - t0


# --------------------------------------------------------------------------- measurements


def hvp_operator(flat, theta):
    """Hessian-vector product v -> Hv of the train loss at theta, by double backward.

    The gradient graph is built once (create_graph=True) and reused for every product;
    grad(g, theta, grad_outputs=v) is the gradient of g·v.
    """
    theta = theta.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(flat.train_loss(theta), theta, create_graph=True)

    def hvp(v):
        return torch.autograd.grad(g, theta, grad_outputs=v, retain_graph=True)[0]

    return hvp


def top_eigenvalue(hvp, n, gen):
    """Algebraically largest Hessian eigenvalue by Lanczos with full reorthogonalisation."""
    q = torch.randn(n, generator=gen, dtype=DTYPE)
    q /= q.norm()
    basis = torch.empty(LANCZOS_MAX, n, dtype=DTYPE)
    alphas, betas = [], []
    q_prev, beta_prev = torch.zeros_like(q), 0.0
    top = float("nan")
    for j in range(LANCZOS_MAX):
        basis[j] = q
        w = hvp(q)
        alpha = torch.dot(q, w).item()
        w = w - alpha * q - beta_prev * q_prev
        # Full reorthogonalisation against every Lanczos vector so far (twice is enough):
        # without it, lost orthogonality produces spurious copies of converged eigenvalues.
        for _ in range(2):
            w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = w.norm().item()
        alphas.append(alpha)
        betas.append(beta)
        m = j + 1
        invariant = beta <= 1e-12 * max(1.0, abs(alpha))
        if m % LANCZOS_CHECK == 0 or m == LANCZOS_MAX or invariant:
            if m == 1:
                vals, vecs = np.array([alpha]), np.ones((1, 1))
            else:
                vals, vecs = eigh_tridiagonal(np.array(alphas), np.array(betas[:-1]))
            top = float(vals[-1])
            # Residual of the Ritz pair: ||H y - lambda y|| = beta_m * |last entry of s|.
            if invariant or beta * abs(vecs[-1, -1]) <= LANCZOS_TOL * max(1.0, abs(top)):
                break
        q_prev, q, beta_prev = q, w / beta, beta
    return top


def hessian_trace(hvp, n, gen):
    """Hutchinson estimate: mean of z^T H z over Rademacher probes z."""
    total = 0.0
    for _ in range(HUTCHINSON_PROBES):
        z = torch.randint(0, 2, (n,), generator=gen).to(DTYPE).mul_(2).sub_(1)
        total += torch.dot(z, hvp(z)).item()
    return total / HUTCHINSON_PROBES


def eps_sharpness(flat, theta, loss0, gen):
    """Projected sign-gradient ascent of J in the box |delta| <= eps(|theta|+1)."""
    box = SHARP_EPS * (theta.abs() + 1)
    sign0 = torch.randint(0, 2, theta.shape, generator=gen).to(DTYPE).mul_(2).sub_(1)
    delta = 0.25 * box * sign0
    best = loss0
    for k in range(SHARP_ITERS):
        point = (theta + delta).requires_grad_(True)
        value = flat.train_loss(point)
        (grad,) = torch.autograd.grad(value, point)  # value and gradient in one pass
        best = max(best, value.item())
        delta = torch.clamp(delta + (0.5 * 0.95**k) * box * grad.sign(), -box, box)
    with torch.no_grad():
        best = max(best, flat.train_loss(theta + delta).item())
    return 100.0 * (best - loss0) / (1.0 + loss0)


def filter_normalised_direction(flat, theta, gen):
    """Gaussian direction whose weight rows have the norms of theta's rows; biases zero."""
    parts = []
    for name, piece, shape in zip(flat.names, theta.split(flat.numels), flat.shapes):
        if name.endswith("weight"):
            w = piece.view(shape)  # (out, in): one row per output unit's incoming weights
            d = torch.randn(shape, generator=gen, dtype=DTYPE)
            d *= w.norm(dim=1, keepdim=True) / d.norm(dim=1, keepdim=True)
            parts.append(d.reshape(-1))
        else:
            parts.append(torch.zeros_like(piece))
    return torch.cat(parts)


@torch.no_grad()
def losses_along(flat, base, direction, coefs):
    """Train and test loss at base + c * direction for each c in coefs."""
    train, test = [], []
    for c in coefs.tolist():
        point = base + c * direction
        train.append(flat.train_loss(point).item())
        test.append(flat.test_loss(point).item())
    return train, test


def measure(model, data, seed):
    """Everything evaluated at the final parameters; returns (row fields, slice curves)."""
    flat = Flat(model, data)
    theta = nn.utils.parameters_to_vector(model.parameters()).detach()
    n = theta.numel()
    gen = torch.Generator().manual_seed(seed)

    with torch.no_grad():
        out_tr = flat.logits(theta, data.x_tr)
        out_te = flat.logits(theta, data.x_te)
        loss0 = data.loss_fn(out_tr, data.y_tr).item()
        row = {
            "train_loss": loss0,
            "train_accuracy": data.accuracy(out_tr, data.y_tr),
            "test_loss": data.loss_fn(out_te, data.y_te).item(),
            "test_accuracy": data.accuracy(out_te, data.y_te),
        }

    hvp = hvp_operator(flat, theta)
    row["top_eigenvalue"] = top_eigenvalue(hvp, n, gen)
    row["trace"] = hessian_trace(hvp, n, gen)
    del hvp  # frees the retained gradient graph
    row["eps_sharpness"] = eps_sharpness(flat, theta, loss0, gen)

    # SLICE_ALPHAS holds -0.2 and +0.2 at these indices (step 0.1).
    i_minus = int(torch.argmin((SLICE_ALPHAS + SLICE_RISE_AT).abs()))
    i_plus = int(torch.argmin((SLICE_ALPHAS - SLICE_RISE_AT).abs()))
    slices, rise = [], 0.0
    for _ in range(SLICE_DIRECTIONS):
        d = filter_normalised_direction(flat, theta, gen)
        tr, te = losses_along(flat, theta, d, SLICE_ALPHAS)
        slices.append({"train": tr, "test": te})
        rise += (tr[i_minus] + tr[i_plus]) / 2 - loss0
    row["slice_rise"] = rise / SLICE_DIRECTIONS
    row["param_norm"] = theta.norm().item()
    return row, slices, theta


# --------------------------------------------------------------------------- driver

# (key, header, width, format spec) of the printed table; the JSON keeps the full keys.
COLUMNS = (
    ("dataset", "dataset", 12, ""), ("seed", "seed", 4, ""), ("batch_size", "batch", 5, ""),
    ("steps", "steps", 6, ""), ("reached", "reached", 7, ""),
    ("train_loss", "train_loss", 10, ".3e"), ("train_accuracy", "tr_acc", 6, ".4f"),
    ("test_loss", "test_loss", 10, ".3e"), ("test_accuracy", "te_acc", 6, ".4f"),
    ("top_eigenvalue", "lambda_max", 10, ".4g"), ("trace", "trace", 9, ".4g"),
    ("eps_sharpness", "eps_sharp", 10, ".3e"), ("slice_rise", "slice_rise", 10, ".3e"),
    ("param_norm", "|theta|", 7, ".2f"), ("train_seconds", "train_s", 8, ".2f"),
    ("measure_seconds", "meas_s", 7, ".2f"),
)


def print_header():
    print(" ".join(f"{head:>{width}}" for _, head, width, _ in COLUMNS), flush=True)


def print_row(row):
    print(" ".join(f"{str(row[key]) if not spec else format(row[key], spec):>{width}}"
                   for key, _, width, spec in COLUMNS), flush=True)


def main():
    wall0 = time.perf_counter()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", default=None, help="comma list of digits,noisy-binary")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3)")
    p.add_argument("--target", type=float, default=None, help="training loss target (1e-3)")
    p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate (0.1)")
    p.add_argument("--cap", type=int, default=None, help="most parameter updates (20000)")
    p.add_argument("--json", metavar="PATH", help="write rows and totals as JSON")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 1 seed, digits, cap 300, target 0.05")
    args = p.parse_args()
    # --quick supplies defaults; anything given explicitly still wins.
    quick = {"datasets": "digits", "seeds": 1, "target": 0.05, "cap": 300}
    full = {"datasets": "digits,noisy-binary", "seeds": 3, "target": 1e-3, "cap": 20000}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    runs, all_slices, interpolations = [], [], []
    train_total = measure_total = 0.0
    print_header()
    for name in args.datasets.split(","):
        data = load(name.strip())
        for seed in range(args.seeds):
            solutions = {}
            for bs in BATCH_SIZES:
                model = make_model(data, seed)
                steps, t_train = train(model, data, bs, seed, args.lr, args.target, args.cap)
                t0 = time.perf_counter()
                fields, slices, theta = measure(model, data, seed)
                t_meas = time.perf_counter() - t0
                solutions[bs] = theta
                row = {"dataset": data.name, "seed": seed, "batch_size": bs, "steps": steps,
                       "reached": fields["train_loss"] < args.target, **fields,
                       "train_seconds": t_train, "measure_seconds": t_meas}
                runs.append(row)
                all_slices.append({"dataset": data.name, "seed": seed, "batch_size": bs,
                                   "alpha": SLICE_ALPHAS.tolist(), "directions": slices})
                train_total += t_train
                measure_total += t_meas
                print_row(row)

            # Line through the batch-8 and full-batch solutions: theta8 + t (thetaF - theta8).
            t0 = time.perf_counter()
            flat = Flat(model, data)
            theta8 = solutions[8]
            tr, te = losses_along(flat, theta8, solutions["full"] - theta8, INTERP_T)
            measure_total += time.perf_counter() - t0
            interpolations.append({"dataset": data.name, "seed": seed, "t": INTERP_T.tolist(),
                                   "train": tr, "test": te})

    wall = time.perf_counter() - wall0
    print(f"train seconds {train_total:.2f}   measure seconds {measure_total:.2f}   "
          f"wall seconds {wall:.2f}")
    missed = [f"{r['dataset']}/seed {r['seed']}/batch {r['batch_size']}"
              for r in runs if not r["reached"]]
    print("missed target: " + (", ".join(missed) if missed else "none"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "train_seconds": train_total,
                       "measure_seconds": measure_total, "wall_seconds": wall,
                       "slices": all_slices, "interpolations": interpolations}, f, indent=1)


if __name__ == "__main__":
    main()
