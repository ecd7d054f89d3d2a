"""vidcls's development package: what tests, bench/ and the training scripts share.

- `motion`: the synthetic motion task behind the bundled motion-tiny (specs, draws, renderer,
  the held-out set); `train_motion` and `eval_motion` train and score it.
- `media`, `media_broken`: videos whose content is known, and damaged ones.
- `hf_models`: random-weight transformers models saved in the hub layout.
- `bench`: paths, timing and tables of the benchmark scripts.
- `mvit`: the torchvision MViT fixtures (tests/data/mvit-torchvision) and their tiny config.

It lives in the repository and is installed editable (`pip install -e ./dev`), because the
training script writes the bundled weights and the registry hash of the checkout it sits in.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["repo_root"]


def repo_root() -> Path:
    """The vidcls checkout this package belongs to."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "weights.toml").is_file() or not (root / "vidcls").is_dir():
        raise RuntimeError(
            f"vidcls_dev is not inside a vidcls checkout ({root}): install it with "
            "`pip install -e ./dev` from the repository root"
        )
    return root
