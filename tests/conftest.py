from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight TimeSformer (8 frames, 224 px, 400 classes named "label N") in hub layout."""
    from vidcls_dev.hf_models import LABELS, save_hub_folder, tiny_timesformer

    model = tiny_timesformer(
        num_frames=8, image_size=224, num_labels=400, id2label=dict(enumerate(LABELS))
    )
    return save_hub_folder(model, tmp_path_factory.mktemp("tiny") / "weights")
