"""vidcls: classify the actions in videos of any length with TimeSformer and ViViT.

    model, spec, labels, source = vidcls.load_model("timesformer")
    result = vidcls.predict("clip.mp4", model="timesformer")

Heavy modules (torch, av) load on first use, so `import vidcls` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "predict": "vidcls.api",
    "segment": "vidcls.api",
    "model_inputs": "vidcls.api",
    "stream": "vidcls.api",
    "stop": "vidcls.api",
    "load_model": "vidcls.loading",
    "LoadedModel": "vidcls.loading",
    "available_models": "vidcls.registry",
    "get_spec": "vidcls.registry",
    "ModelSpec": "vidcls.registry",
    "VidclsError": "vidcls.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vidcls' has no attribute {name!r}")
