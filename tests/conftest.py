import sys
from pathlib import Path

# test helper modules (hf_models, media) import by bare name
sys.path.insert(0, str(Path(__file__).parent))
