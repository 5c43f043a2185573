"""One training step's loss and hand-written gradients, for every instance at once.

The forward pass, y - target fused into the output product, and the backward pass through
the nonlinearity (a fused in-place ReLU backward where torch provides one; the portable path
when ``MONOSEM_PORTABLE_BACKWARD=1``). ``training`` runs these in its loop.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from .model import ToyModel, get_nonlinearity

__all__ = ["loss_and_grad", "set_fused_backward", "fused_backward", "FUSED_BACKWARD_ENV"]


FUSED_BACKWARD_ENV = "MONOSEM_PORTABLE_BACKWARD"
_fused = {"relu": os.environ.get(FUSED_BACKWARD_ENV, "") in ("", "0")}


def set_fused_backward(enabled: bool) -> bool:
    """Use torch's fused ReLU backward op (``aten.threshold_backward``) or, with False, the
    portable ``masked_fill_`` fallback (same numbers, slower on CPU). Returns the previous
    setting. Setting the environment variable ``MONOSEM_PORTABLE_BACKWARD=1`` before import
    starts with the fallback; training switches to it by itself when this torch lacks the op."""
    previous = _fused["relu"]
    _fused["relu"] = bool(enabled)
    return previous


def fused_backward() -> bool:
    """Whether the ReLU backward currently uses torch's fused op."""
    return _fused["relu"]


def _fused_relu_op() -> Callable[..., Tensor]:
    """torch's fused ReLU backward (an internal aten op: it may move between versions)."""
    return torch.ops.aten.threshold_backward.grad_input


def _relu_backward_(DH: Tensor, h: Tensor) -> None:
    """DH <- DH where h > 0, else 0, in place (DH, h: [I, B, k]; h = relu(pre))."""
    if _fused["relu"]:
        try:
            # A boolean mask (masked_fill_) is ~10x slower on CPU than this fused op.
            _fused_relu_op()(DH, h, 0.0, grad_input=DH)
            return
        except (AttributeError, RuntimeError, NotImplementedError, TypeError) as err:
            _fused["relu"] = False
            warnings.warn(
                f"torch.ops.aten.threshold_backward failed ({err!r}); using the portable "
                "ReLU backward from now on (same numbers, slower on CPU)",
                RuntimeWarning,
                stacklevel=3,
            )
    DH.masked_fill_(~(h > 0), 0.0)


def _scratch(model: ToyModel, x: Tensor, grad: Tensor, buf: dict) -> tuple:
    """Weight and gradient views and the [I, B, k], [I, B, k], [I, B, out] scratch tensors
    H, DH, Y, kept in ``buf`` between steps and rebuilt when a shape or buffer changes."""
    I, B = x.shape[0], x.shape[1]
    key = (model.flat.data_ptr(), grad.data_ptr())
    if buf.get("views_of") != key:
        buf["views_of"], buf["views"] = key, (model.split(), model.split(grad))
    if buf.get("shape") != (I, B, model.k, model.out, x.dtype, x.device):
        views_of, views = buf["views_of"], buf["views"]
        buf.clear()
        buf["views_of"], buf["views"] = views_of, views
        buf["shape"] = (I, B, model.k, model.out, x.dtype, x.device)
        buf["H"] = x.new_empty(I, B, model.k)
        buf["DH"] = x.new_empty(I, B, model.k)
        buf["Y"] = x.new_empty(I, B, model.out)
    return buf["views"], buf["H"], buf["DH"], buf["Y"]


def loss_and_grad(
    model: ToyModel,
    x: Tensor,
    target: Tensor,
    grad: Tensor,
    l1: Tensor | None = None,
    buffers: dict | None = None,
) -> Tensor:
    """Loss per instance and its gradient, written into ``grad`` (same layout as model.flat).

    Loss of instance i: sum over outputs and batch of (y - target)^2, divided by the batch
    size (the paper's loss), plus ``l1[i] * sum |h| / batch`` when l1 is given.

    Args:
        x: inputs [I, B, m].
        target: [I, B, out], or [1, B, out] shared by all instances.
        grad: flat buffer receiving d loss / d weights.
        l1: [I, 1, 1] activation penalties, or None.
        buffers: reused scratch tensors (avoids reallocating large buffers every step).
    Returns:
        The reconstruction loss (without the l1 term) per instance, [I].
    """
    B = x.shape[1]
    ((W1, b, W2), (gW1, gb, gW2)), H, DH, Y = _scratch(
        model, x, grad, {} if buffers is None else buffers
    )
    relu = model.nonlinearity == "relu"
    act = get_nonlinearity(model.nonlinearity)

    torch.baddbmm(b.unsqueeze(1), x, W1.transpose(1, 2), out=H)
    if relu:
        H.clamp_(min=0)  # H now holds h; h > 0 exactly where the preactivation is
        h = H
    else:
        pre = H
        h = act.forward(pre)
    # y - target in one product: Y <- h W2^T - target (beta=-1 scales the preloaded target).
    torch.baddbmm(target, h, W2.transpose(1, 2), beta=-1, out=Y)
    loss = torch.linalg.vector_norm(Y, dim=(1, 2)).square_().div_(B)
    # d loss / d y = 2 (y - target) / B; the factor rides on the matmuls' alpha.
    torch.baddbmm(gW2, Y.transpose(1, 2), h, beta=0, alpha=2.0 / B, out=gW2)
    torch.baddbmm(DH, Y, W2, beta=0, alpha=2.0 / B, out=DH)
    if relu:
        if l1 is not None:
            DH.add_(l1 / B)  # sign(h) = 1 wherever the mask below keeps the gradient
        _relu_backward_(DH, H)
    else:
        if l1 is not None:
            DH.add_(torch.sign(h) * (l1 / B))
        DH.mul_(act.derivative(pre))
    torch.bmm(DH.transpose(1, 2), x, out=gW1)
    torch.sum(DH, dim=1, out=gb)
    return loss
