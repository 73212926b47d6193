# syntax=docker/dockerfile:1
#
# longisynth HTTP service on a CUDA runtime image (GPU optional: onnxruntime-gpu falls back to
# the CPU execution provider when no GPU is visible).
#
#   docker build -t longisynth .
#   docker run --gpus all -p 3000:3000 -e LONGISYNTH_API_KEYS=secret longisynth
#
# Environment read by the service (service/config.py); defaults below, override with `-e`:
#   LONGISYNTH_API_KEYS          comma-separated API keys; empty (default) = no authentication.
#                                Pass at run time only, never bake keys into the image.
#   LONGISYNTH_MAX_UPLOAD_BYTES  largest request body, bytes (default 1073741824 = 1 GiB) -> 413
#   LONGISYNTH_MAX_VOXELS        largest scan, voxels (default 268435456 = 256 Mi) -> 413
#   LONGISYNTH_MAX_TIMEPOINTS    most timepoints per study (default 12) -> 422
#   LONGISYNTH_MAX_CONCURRENCY   studies simulated at once (default 2)
#   LONGISYNTH_MAX_QUEUE         studies waiting for a slot (default 8); beyond -> 429
#   LONGISYNTH_REFINER           refiner model path (default: the one shipped in the wheel), or "off"
#   LONGISYNTH_BATCH_MAX_TILES   most refiner tiles per inference call (default 64)
#   LONGISYNTH_BATCH_WAIT_MS     how long a refiner call waits to batch with other studies (20)
#
# Stages: builder (python slim: wheels of the project and its pinned dependencies) ->
# runtime-base (CUDA 12.6 + cuDNN 9 runtime, Python 3.11 from apt) -> venv (installs the wheels
# into /opt/venv, then removes pip/setuptools) -> final (runtime-base + /opt/venv + service/; the
# refiner model is package data in the wheel; no compilers, no pip, no wheels, no pip/apt caches).
#
# onnxruntime-gpu 1.26.0 is the newest PyPI release built for CUDA 12 + cuDNN 9 (1.27+ link
# CUDA 13). Keep the pins equal to bentofile.yaml (tests/test_packaging.py checks).

############################ 1. builder: wheels only ############################
FROM python:3.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY longisynth/ ./longisynth/

# The project wheel (pure Python), then every runtime dependency as a binary wheel
# (--only-binary: fail rather than compile anything; torch is never pulled in).
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip wheel --only-binary=:all: --wheel-dir /wheels \
        "numpy==2.4.6" \
        "scipy==1.17.1" \
        "nibabel==5.4.2" \
        "pydicom==3.0.2" \
        "SimpleITK==2.5.7" \
        "nilearn==0.14.1" \
        "pydantic==2.14.4" \
        "isal==1.9.1" \
        "matplotlib==3.11.2" \
        "rich==15.0.0" \
        "scikit-learn==1.9.1" \
        "pyyaml==6.0.4" \
        "bentoml==1.4.40" \
        "starlette==1.10.0" \
        "python-multipart==0.0.34" \
        "onnxruntime-gpu==1.26.0" \
    && for f in /wheels/torch-*.whl; do \
        if [ -e "$f" ]; then echo "torch must not be a dependency" >&2; exit 1; fi; \
    done

############################ 2. runtime-base: CUDA + Python ############################
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04 AS runtime-base

ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python 3.11 from Ubuntu 22.04 (jammy-updates/universe). Versions are not pinned: Ubuntu
# drops superseded point releases from the archive, so a pin breaks rebuilds; the CUDA base
# tag above is what fixes the image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 ca-certificates \
    && rm -rf /var/lib/apt/lists/*

############################ 3. venv: install the wheels ############################
FROM runtime-base AS venv

# python3.11-venv only exists in this throw-away stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11-venv \
    && rm -rf /var/lib/apt/lists/*

COPY --from=builder /wheels /wheels
# longisynth itself goes in with --no-deps: its pyproject asks for the CPU `onnxruntime`, which
# `onnxruntime-gpu` replaces here (same module, CUDA + CPU execution providers).
RUN python3.11 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links=/wheels \
        numpy scipy nibabel pydicom SimpleITK nilearn pydantic isal matplotlib rich scikit-learn \
        pyyaml bentoml starlette python-multipart onnxruntime-gpu \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --no-deps --find-links=/wheels longisynth \
    && /opt/venv/bin/pip uninstall -y pip setuptools wheel \
    && rm -rf /wheels

############################ 4. final ############################
FROM runtime-base AS final

LABEL org.opencontainers.image.title="longisynth" \
      org.opencontainers.image.description="Synthetic longitudinal pathology in 3D medical images (HTTP service)" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 longisynth \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
        --create-home --home-dir /home/longisynth --shell /usr/sbin/nologin longisynth

COPY --from=venv /opt/venv /opt/venv

WORKDIR /app
COPY --chown=root:root service/ ./service/
# The refiner (refiner.onnx + its card refiner.json, verified by sha256 at start) is package data
# of the longisynth wheel installed above: the engine finds it with importlib.resources.

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONPATH="/app" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib \
    BENTOML_HOME=/home/longisynth/bentoml \
    BENTOML_DO_NOT_TRACK=true \
    LONGISYNTH_MAX_UPLOAD_BYTES=1073741824 \
    LONGISYNTH_MAX_VOXELS=268435456 \
    LONGISYNTH_MAX_TIMEPOINTS=12 \
    LONGISYNTH_MAX_CONCURRENCY=2 \
    LONGISYNTH_MAX_QUEUE=8

EXPOSE 3000

# No curl in the image: probe /healthz with the venv's Python.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

# The `longisynth` user (uid/gid 10001), numeric so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

# `longisynth serve` looks for service/ next to the installed engine package (a checkout), which
# site-packages is not; so start BentoML directly on /app, which is what that command runs.
CMD ["bentoml", "serve", "service.service:Longisynth", "--host", "0.0.0.0", "--port", "3000", \
     "--working-dir", "/app"]
