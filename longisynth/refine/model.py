"""Loading the exported refiner (ONNX + JSON sidecar) and running it with ONNX Runtime.

The model file is verified against the sha256 in its sidecar before it is used; a missing,
corrupt or unloadable model never fails a study — the engine falls back to the rule-based image
and says why in the bundle metadata (``refiner.status`` / ``refiner.reason``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

MODEL_ENV = "LONGISYNTH_REFINER"  # path to a .onnx file, or "off"


def _shipped_model() -> Path:
    """The model shipped as package data (``longisynth/refine/weights/``), wherever the package is
    installed (editable, wheel, container)."""
    return Path(str(resources.files("longisynth.refine") / "weights" / "refiner.onnx"))


DEFAULT_MODEL = _shipped_model()


class Denoiser(Protocol):
    """Anything that maps a batch of tiles to predicted noise (the ONNX model, or a batcher over it)."""

    def __call__(self, x: NDArray[np.float32], t: NDArray[np.int64]) -> NDArray[np.float32]: ...


@dataclass
class RefinerStatus:
    """What the bundle metadata says about the refiner of a study."""

    status: str  # "applied", "disabled", "unavailable" or "skipped" (a model of another modality)
    reason: str = ""
    model: str = ""
    sha256: str = ""
    provider: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        for key in ("reason", "model", "sha256", "provider"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        out.update(self.extra)
        return out


def choose_providers() -> list[str]:
    """CUDA when ONNX Runtime has it (GPU build on a GPU host), CPU otherwise."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxRefiner:
    """An ONNX Runtime session over a verified refiner model; thread-safe, any batch size."""

    def __init__(self, path: Path, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        sidecar = self.path.with_suffix(".json")
        if not self.path.is_file():
            raise FileNotFoundError(f"refiner model {self.path.name} not found")
        if not sidecar.is_file():
            raise FileNotFoundError(f"refiner model card {sidecar.name} not found")
        self.card: dict[str, Any] = json.loads(sidecar.read_text())
        data = self.path.read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        if self.sha256 != self.card.get("sha256"):
            raise ValueError(
                f"refiner model {self.path.name} does not match its sha256 (corrupt or replaced)"
            )
        options = ort.SessionOptions()
        options.use_deterministic_compute = True
        options.log_severity_level = 3
        self.session = ort.InferenceSession(data, options, providers=providers or choose_providers())
        self.provider = self.session.get_providers()[0]
        self.name = str(self.card.get("name", self.path.stem))
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, x: NDArray[np.float32], t: NDArray[np.int64]) -> NDArray[np.float32]:
        with self._lock:
            self.calls += 1
        (eps,) = self.session.run(None, {"x": np.ascontiguousarray(x, np.float32), "t": t.astype(np.int64)})
        return np.asarray(eps, dtype=np.float32)

    def status(self) -> RefinerStatus:
        return RefinerStatus(
            "applied",
            model=self.name,
            sha256=self.sha256,
            provider=self.provider,
            extra={"memorisation": self.card.get("memorisation", {})},
        )


# Why the refiner is off unless asked for (issue 18; models/README.md, "Measured benefit"): on the
# real-lesion yardsticks it changes nothing measurable, and it costs seconds per study.
DEFAULT_OFF_REASON = (
    "off by default: no measured benefit on the real-lesion yardsticks (models/README.md); "
    f"refine=True or {MODEL_ENV}=<model.onnx> turns it on"
)


def on_by_default() -> bool:
    """Whether a request that says nothing about the refiner gets it: only when the site names a
    model in ``LONGISYNTH_REFINER`` (a path; "off" or unset: no)."""
    value = os.environ.get(MODEL_ENV, "").strip()
    return bool(value) and value.lower() not in ("off", "none", "0", "false")


def model_path() -> Path | None:
    """The configured model path, or None when the refiner is switched off (``LONGISYNTH_REFINER=off``)."""
    value = os.environ.get(MODEL_ENV, "").strip()
    if value.lower() in ("off", "none", "0", "false"):
        return None
    return Path(value) if value else DEFAULT_MODEL


def load_refiner(path: Path | None) -> tuple[OnnxRefiner | None, str]:
    """The refiner at ``path`` and "" — or None and the reason (None path: switched off)."""
    if path is None:
        return None, f"switched off ({MODEL_ENV}=off)"
    try:
        return OnnxRefiner(path), ""
    except ImportError:
        return None, "onnxruntime is not installed"
    except Exception as exc:  # a corrupt protobuf raises ORT's own exception types
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"refiner model could not be loaded: {text[:200]}"


_DEFAULT: dict[str, tuple[OnnxRefiner | None, str]] = {}
_DEFAULT_LOCK = threading.Lock()


def default_refiner() -> tuple[OnnxRefiner | None, str]:
    """The configured refiner, loaded once per process (keyed by its path)."""
    path = model_path()
    key = str(path)
    with _DEFAULT_LOCK:
        if key not in _DEFAULT:
            _DEFAULT[key] = load_refiner(path)
        return _DEFAULT[key]
