import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A real ONNX bundle (random-weight tiny codec + two denoisers 'alpha', 'beta'), exported once per run."""
    pytest.importorskip("torch")
    from tests.helpers import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture
def tiny_preset(tiny_bundle):
    from live.preset import Preset

    return Preset(name="alpha-to-beta", source="alpha", target="beta", sigma_max=5.0, steps=2, window=16, hop=4,
                  crossfade=2, bundle=str(tiny_bundle))


@pytest.fixture
def preset_file(tmp_path, tiny_bundle):
    """The tiny preset as a JSON file in tmp_path/presets (what the command-line tools take)."""
    import json

    p = tmp_path / "presets" / "alpha-to-beta.json"
    p.parent.mkdir()
    p.write_text(json.dumps(dict(name="alpha-to-beta", source="alpha", target="beta", sigma_max=5.0, steps=2,
                                 solver="euler", window=16, hop=4, crossfade=2, bundle=str(tiny_bundle))))
    return p
