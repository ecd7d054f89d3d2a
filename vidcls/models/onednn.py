"""Linear layers through oneDNN with weights packed once, for inference on a CPU.

`F.linear` hands oneDNN (bf16) or MKL (fp32) the weight in its plain (out, in) layout, and the
library reorders it into its blocked layout on every call. `torch.ops.mkldnn._linear_pointwise`
takes a weight reordered once (`_reorder_linear_weight`) and can apply GELU to the product
before it is rounded (a post-op). Both give the same products as `F.linear` up to rounding
(tests/test_models.py); what they buy is in BENCHMARKS.md.

The packed copy is an addition, never a replacement: the parameter stays as it is, so state
dicts, training, other devices and other dtypes see an ordinary `nn.Linear`. The copy is made on
the first call that can use it and made again if the weight changes in place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

AVAILABLE = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
_DTYPES = (torch.float32, torch.bfloat16)


def usable(x: torch.Tensor) -> bool:
    """Whether oneDNN's linear may run on `x`: CPU inference (it has no gradient), fp32 or bf16,
    and not while torch.compile traces (inductor packs and fuses weights itself)."""
    return (
        AVAILABLE
        and x.device.type == "cpu"
        and x.dtype in _DTYPES
        and not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
    )


class PackedLinear(nn.Linear):
    """`nn.Linear` that, in CPU inference, multiplies by a copy of its weight packed for oneDNN.

    Models build plain `nn.Linear`s (their state dict names stay the published ones);
    `pack_linears` turns them into this class in place."""

    _packed: torch.Tensor | None = None
    _packed_from: tuple[int, int, torch.dtype] | None = None

    def __getstate__(self) -> dict:
        # the packed copy is an opaque oneDNN tensor that neither pickles nor deep-copies
        return {k: v for k, v in self.__dict__.items() if k not in ("_packed", "_packed_from")}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(self, x, self.bias)

    def packed_weight(self, x: torch.Tensor) -> torch.Tensor | None:
        """The packed weight for input `x`, or None where the plain call must run."""
        weight = self.weight
        if not usable(x) or weight.device.type != "cpu" or weight.dtype != x.dtype:
            return None
        source = (weight.data_ptr(), _version(weight), weight.dtype)
        if self._packed is None or self._packed_from != source:
            # the row count (1) is only oneDNN's hint for choosing a kernel
            self._packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), 1)
            self._packed_from = source
        return self._packed


def _version(t: torch.Tensor) -> int:
    # tensors made under inference_mode keep no version counter; they cannot change in place
    # outside it either, so one value serves
    return -1 if t.is_inference() else t._version


def linear_gelu(linear: nn.Linear, x: torch.Tensor, approximate: str) -> torch.Tensor | None:
    """GELU(linear(x)) as one oneDNN call (GELU reads the product before it is rounded), or None
    where that call cannot run."""
    if isinstance(linear, PackedLinear):
        weight = linear.packed_weight(x)  # it asks `usable` itself
    elif usable(x) and linear.weight.dtype == x.dtype:
        weight = linear.weight
    else:
        weight = None
    if weight is None:
        return None
    return torch.ops.mkldnn._linear_pointwise(x, weight, linear.bias, "gelu", [], approximate)


def linear(module: nn.Linear, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`F.linear(x, module.weight, bias)`, through the packed weight where it can run: for a
    layer whose bias is assembled at call time (VideoMAE's q and v biases)."""
    packed = module.packed_weight(x) if isinstance(module, PackedLinear) else None
    if packed is None:
        return F.linear(x, module.weight, bias)
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


def pack_linears(model: nn.Module) -> nn.Module:
    """Turn every plain `nn.Linear` of `model` into a `PackedLinear`, in place.

    The class is swapped rather than the module replaced, so parameter names, hooks and the
    state dict stay exactly as they were."""
    if not AVAILABLE:
        return model
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = PackedLinear
    return model
