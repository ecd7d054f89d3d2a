import sys
from pathlib import Path

import pytest

# test helper modules (hf_models, media) import by bare name
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight TimeSformer (8 frames, 224 px, 400 classes named "label N") in hub layout."""
    from hf_models import LABELS, save_hub_folder, tiny_timesformer

    model = tiny_timesformer(
        num_frames=8, image_size=224, num_labels=400, id2label=dict(enumerate(LABELS))
    )
    return save_hub_folder(model, tmp_path_factory.mktemp("tiny") / "weights")
