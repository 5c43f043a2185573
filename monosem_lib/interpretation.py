"""Reverse-engineering a trained model, one instance at a time.

Primitives: how often each neuron fires on real inputs, the loss after ablating or
linearising a set of neurons, and the singular values of the linear map a neuron subset S
applies, W2[:, S] W1[S, :] P. On top of them, ``classify_neurons`` sorts neurons into the
classes the paper found and ``interpret`` writes the whole report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .data import make_world
from .metrics import MONO_THRESHOLD, is_signed, neuron_stats
from .model import ToyModel, activation
from .training import Run

__all__ = [
    "CLASSES",
    "activity_fraction",
    "ablation_loss",
    "subset_map",
    "interference",
    "neuron_alignment",
    "feature_response",
    "subspace_analysis",
    "SubspaceAnalysis",
    "row_space_projector",
    "matrix_cosine",
    "classify_neurons",
    "NeuronClasses",
    "Report",
    "interpret",
]

CLASSES = ("monosemantic", "near-monosemantic", "always-on", "polysemantic", "dead")
EVAL_SAMPLES = 2**14


def _instance(run: Run, instance: int) -> tuple[ToyModel, Tensor]:
    if not 0 <= instance < run.instances:
        raise IndexError(f"instance={instance} is out of range: the run has {run.instances} instance(s)")
    return run.model.select(instance), run.P[instance]


def _eval_batches(run: Run, instance: int, samples: int):
    cfg = run.configs[instance]
    chunk = min(cfg.batch, samples)
    world = make_world(cfg.replace(batch=chunk, device=str(run.model.flat.device)), stream="eval")
    n = 0
    while n < samples:
        yield world.sample()
        n += chunk


def _mask(k: int, neurons) -> Tensor:
    m = torch.zeros(k, dtype=torch.bool)
    if neurons is not None:
        idx = torch.as_tensor(neurons)
        if idx.dtype == torch.bool:
            if idx.numel() != k:
                raise ValueError(f"a neuron mask needs {k} entries, got {idx.numel()}")
            return idx.cpu().clone()
        m[idx.long()] = True
    return m


@torch.no_grad()
def activity_fraction(run: Run, instance: int = 0, samples: int = EVAL_SAMPLES) -> Tensor:
    """Fraction of sampled inputs on which each neuron is active (h > 0), shape [k]."""
    model, _ = _instance(run, instance)
    active = torch.zeros(model.k, dtype=torch.float64)
    n = 0
    for _, x, _ in _eval_batches(run, instance, samples):
        h = model.hidden(x)[0]
        active += (h > 0).double().sum(0).cpu()
        n += h.shape[0]
    return active / n


@torch.no_grad()
def ablation_loss(run: Run, neurons=None, instance: int = 0, samples: int = EVAL_SAMPLES,
                  linearize=None) -> float:
    """Loss on evaluation samples after zeroing ``neurons`` (indices or a [k] mask) and
    replacing the nonlinearity of ``linearize`` neurons by the identity."""
    model, _ = _instance(run, instance)
    zero = _mask(model.k, neurons).to(model.flat.device)
    lin = _mask(model.k, linearize).to(model.flat.device)
    W2 = model.W2[0]
    total, n = 0.0, 0
    for _, x, target in _eval_batches(run, instance, samples):
        pre = model.preactivations(x)[0]
        h = torch.where(lin, pre, activation(pre, model.nonlinearity))
        h = h.masked_fill(zero, 0.0)
        y = h @ W2.T
        total += float(((y - target) ** 2).sum())
        n += x.shape[0]
    return total / n


@torch.no_grad()
def interference(run: Run, neuron: int, instance: int = 0, feature: int | None = None,
                 samples: int = EVAL_SAMPLES) -> Tensor:
    """What other features feed a neuron: its input W1[n] x on evaluation samples where its
    own feature is off (default: its strongest single feature). A monosemantic neuron
    stays silent when this stays below -b[n]. Returns a 1-D tensor (float64, CPU)."""
    model, P = _instance(run, instance)
    if feature is None:
        sfa = model.hidden(P.to(model.flat.dtype).T.unsqueeze(0))[0]
        feature = int(sfa[:, neuron].argmax())
    w = model.W1[0, neuron]
    out = []
    for f, x, _ in _eval_batches(run, instance, samples):
        off = f[:, feature] == 0
        out.append((x[off] @ w).double().cpu())
    return torch.cat(out)


def subset_map(run: Run, neurons, instance: int = 0) -> Tensor:
    """W2[:, S] W1[S, :] P for the neuron subset S: the linear map from features to outputs
    that S applies when its neurons act linearly. Shape [out, N] (float64, CPU)."""
    model, P = _instance(run, instance)
    S = _mask(model.k, neurons)
    W1, W2 = model.W1[0].double().cpu(), model.W2[0].double().cpu()
    return W2[:, S] @ W1[S, :] @ P.double().cpu()


def row_space_projector(P: Tensor) -> Tensor:
    """P^T (P P^T)^-1 P, the orthogonal projector onto the row space of P, [N, N]."""
    P = P.double().cpu()
    return P.T @ torch.linalg.solve(P @ P.T, P)


def matrix_cosine(A: Tensor, B: Tensor) -> float:
    """Cosine between matrices, <A, B> / (norm(A) norm(B)) with Frobenius norms: 1 for
    matrices equal up to a positive scale."""
    A, B = A.double(), B.double()
    return float((A * B).sum() / (A.norm() * B.norm()))


@dataclass
class SubspaceAnalysis:
    """The linear map of a neuron subset compared with the identity and P's projector."""

    singular_values: Tensor
    near_one: int
    rank_bound: int
    cosine_projector: float
    cosine_identity: float
    map: Tensor = field(repr=False)


def subspace_analysis(run: Run, neurons, instance: int = 0, band: tuple[float, float] = (0.8, 1.2)) -> SubspaceAnalysis:
    """Singular values of ``subset_map`` and how close the map is to P's row-space projector
    (the best a linear map of x = P f can do for the identity) and to the identity."""
    M = subset_map(run, neurons, instance)
    sv = torch.linalg.svdvals(M)
    P = run.P[instance]
    N = P.shape[1]
    near = int(((sv > band[0]) & (sv < band[1])).sum())
    return SubspaceAnalysis(
        singular_values=sv, near_one=near, rank_bound=int(P.shape[0]),
        cosine_projector=matrix_cosine(M, row_space_projector(P)) if M.shape[0] == N else float("nan"),
        cosine_identity=matrix_cosine(M, torch.eye(N, dtype=torch.float64)) if M.shape[0] == N else float("nan"),
        map=M,
    )


@torch.no_grad()
def neuron_alignment(run: Run, instance: int = 0) -> dict[str, Tensor]:
    """How each neuron lines up with its strongest feature j.

    Returns [k]-tensors (float64, CPU): ``feature`` (j), ``input_cosine`` (cosine between the
    neuron's input weights W1[n] and P's column j, the direction feature j takes in x) and
    ``output_share`` (the fraction of the output weights' squared norm on output j; decoder
    and abs tasks, NaN for the re-projector, whose outputs are not features).
    """
    model, P = _instance(run, instance)
    P = P.double().cpu()
    W1, W2 = model.W1[0].double().cpu(), model.W2[0].double().cpu()
    sfa = model.hidden(P.to(model.flat.dtype).T.unsqueeze(0).to(model.flat.device))[0].double().cpu()
    feature = sfa.argmax(0)
    cols = P[:, feature].T  # [k, m]
    cos = (W1 * cols).sum(1) / (W1.norm(dim=1) * cols.norm(dim=1)).clamp(min=1e-30)
    if run.configs[instance].task == "reprojector":
        share = torch.full((model.k,), float("nan"), dtype=torch.float64)
    else:
        own = W2[feature, torch.arange(model.k)] ** 2
        share = own / (W2**2).sum(0).clamp(min=1e-30)
    return {"feature": feature, "input_cosine": cos, "output_share": share}


@torch.no_grad()
def feature_response(run: Run, feature: int, neurons, instance: int = 0, values: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """How neurons build output ``feature`` as that feature alone goes from 0 to 1.

    Returns (values [V], contributions [len(neurons), V]): neuron n adds
    W2[feature, n] * act(W1[n] P_feature v + b[n]) to the output at feature value v.
    """
    model, P = _instance(run, instance)
    values = torch.linspace(0, 1, 51, dtype=torch.float64) if values is None else values.double()
    x = (values[:, None] * P[:, feature].double().cpu()[None, :]).to(model.flat.device, model.flat.dtype)
    h = model.hidden(x.unsqueeze(0))[0].double().cpu()  # [V, k]
    idx = torch.as_tensor(neurons, dtype=torch.long)
    return values, (h[:, idx] * model.W2[0, feature, idx].double().cpu()).T


@dataclass
class NeuronClasses:
    """Per-neuron classification of one instance (all tensors have shape [k])."""

    labels: list[str]
    share: Tensor
    n_features: Tensor
    activity: Tensor
    bias: Tensor
    top_feature: Tensor

    def mask(self, label: str) -> Tensor:
        if label not in CLASSES:
            raise ValueError(f"label={label!r} is not allowed: must be one of {', '.join(CLASSES)}")
        return torch.tensor([lab == label for lab in self.labels])

    def counts(self) -> dict[str, int]:
        return {c: sum(lab == c for lab in self.labels) for c in CLASSES}

    def mean_bias(self) -> dict[str, float | None]:
        out = {}
        for c in CLASSES:
            m = self.mask(c)
            out[c] = float(self.bias[m].mean()) if bool(m.any()) else None
        return out


def classify_neurons(run: Run, instance: int = 0, threshold: float = MONO_THRESHOLD,
                     always_on: float = 0.9, near_max_features: int = 5,
                     samples: int = EVAL_SAMPLES) -> NeuronClasses:
    """Sort the neurons of one instance into ``CLASSES``.

    * dead: no feature alone activates it;
    * monosemantic: one feature carries more than ``threshold`` of its single-feature
      activations (the paper's criterion);
    * always-on: active on at least ``always_on`` of real inputs;
    * near-monosemantic: 2 to ``near_max_features`` features carry ``threshold`` of it;
    * polysemantic: the rest.
    """
    model, P = _instance(run, instance)
    st = neuron_stats(model, P.unsqueeze(0), threshold, signed=is_signed(run.configs[instance]))
    sfa = st.sfa[0].clamp(min=0).double()
    total = sfa.sum(1, keepdim=True).clamp(min=1e-30)
    cum = (sfa.sort(1, descending=True).values / total).cumsum(1)
    n_features = (cum < threshold).sum(1) + 1  # features needed to carry `threshold`
    activity = activity_fraction(run, instance, samples)
    labels = []
    for n in range(model.k):
        if st.dead[0, n]:
            labels.append("dead")
        elif st.mono[0, n]:
            labels.append("monosemantic")
        elif activity[n] >= always_on:
            labels.append("always-on")
        elif n_features[n] <= near_max_features:
            labels.append("near-monosemantic")
        else:
            labels.append("polysemantic")
    return NeuronClasses(labels, st.share[0], n_features, activity, st.bias[0], st.feature[0])


@dataclass
class Report:
    """The reverse-engineering report of one instance; ``text`` is what the CLI prints."""

    instance: int
    classes: NeuronClasses
    loss: float
    zero_loss: float
    linearized_loss: float | None
    ablations: dict[str, float]
    subspace: SubspaceAnalysis | None
    text: str

    def to_dict(self) -> dict:
        sub = self.subspace
        return {
            "instance": self.instance,
            "counts": self.classes.counts(),
            "mean_bias": self.classes.mean_bias(),
            "loss": self.loss,
            "zero_loss": self.zero_loss,
            "linearized_always_on_loss": self.linearized_loss,
            "ablations": self.ablations,
            "always_on_map": None if sub is None else {
                "singular_values": [float(v) for v in sub.singular_values],
                "near_one": sub.near_one,
                "rank_bound": sub.rank_bound,
                "cosine_projector": sub.cosine_projector,
                "cosine_identity": sub.cosine_identity,
            },
        }


def interpret(run: Run, instance: int = 0, samples: int = EVAL_SAMPLES, seed: int = 0) -> Report:
    """Reverse-engineer one instance: neuron classes, the linearity of the always-on
    neurons, the singular values of their joint map, and an ablation table that compares
    zeroing the always-on neurons with zeroing as many monosemantic ones (chosen with
    ``seed``)."""
    from .data import zero_loss

    cfg = run.configs[instance]
    classes = classify_neurons(run, instance, samples=samples)
    counts = classes.counts()
    base = ablation_loss(run, None, instance, samples)
    zl = zero_loss(cfg, None if run.Q is None else run.Q[instance])
    always = classes.mask("always-on")
    mono = classes.mask("monosemantic")
    n_always = int(always.sum())
    ablations: dict[str, float] = {"none": base}
    lin_loss = None
    sub = None
    if n_always:
        lin_loss = ablation_loss(run, None, instance, samples, linearize=always)
        ablations[f"always-on ({n_always})"] = ablation_loss(run, always, instance, samples)
        mono_idx = mono.nonzero().flatten()
        if len(mono_idx) >= n_always:
            g = torch.Generator().manual_seed(seed)
            pick = mono_idx[torch.randperm(len(mono_idx), generator=g)[:n_always]]
            ablations[f"monosemantic, random {n_always}"] = ablation_loss(run, pick, instance, samples)
        sub = subspace_analysis(run, always, instance)
    near = classes.mask("near-monosemantic")
    if bool(near.any()):
        ablations[f"near-monosemantic ({int(near.sum())})"] = ablation_loss(run, near, instance, samples)
    if bool(mono.any()):
        ablations[f"all monosemantic ({int(mono.sum())})"] = ablation_loss(run, mono, instance, samples)

    mb = classes.mean_bias()
    lines = [
        f"Reverse-engineering report: instance {instance} (seed={cfg.seed}, lr={cfg.lr}, init_bias={cfg.init_bias}, "
        f"bias_decay={cfg.bias_decay:.4g}, l1={cfg.l1}; N={cfg.N}, m={cfg.m}, k={cfg.k}, task={cfg.task})",
        f"loss {base:.4f} (zero predictor {zl:.4f})",
        "",
        "Neuron classes (count, mean bias, mean activity on real inputs):",
    ]
    for c in CLASSES:
        m = classes.mask(c)
        act = float(classes.activity[m].mean()) if bool(m.any()) else None
        bias = "-" if mb[c] is None else f"{mb[c]:+.3f}"
        lines.append(f"  {c:<18} {counts[c]:>5}   bias {bias:>7}   active on {'-' if act is None else f'{act:.1%}'} of inputs")
    lines.append(f"  monosemantic neurons per feature: {counts['monosemantic'] / cfg.N:.3f}")
    if n_always:
        lines += [
            "",
            f"The {n_always} always-on neurons act linearly: replacing their nonlinearity by the identity "
            f"changes the loss from {base:.4f} to {lin_loss:.4f}.",
            "Their joint map W2[:,S] W1[S,:] P has singular values (largest 8): "
            + ", ".join(f"{v:.2f}" for v in sub.singular_values[:8].tolist()),
            f"  {sub.near_one} singular values lie in (0.8, 1.2); its rank is at most m = {sub.rank_bound}.",
        ]
        if sub.cosine_projector == sub.cosine_projector:  # not nan: a square map
            lines.append(
                f"  cosine with the projector onto P's row space: {sub.cosine_projector:.3f}; with the identity: "
                f"{sub.cosine_identity:.3f}. A low-rank approximation of the identity: a global correction to every output."
            )
    else:
        lines += ["", "No always-on neurons in this instance."]
    lines += ["", "Ablations (loss after zeroing the neurons):"]
    for name, value in ablations.items():
        lines.append(f"  {name:<32} {value:.4f}  ({value / base:.1f}x)")
    return Report(instance, classes, base, zl, lin_loss, ablations, sub, "\n".join(lines))
