"""Static checks of the container and bento packaging (no Docker daemon, no network needed).

The Dockerfile is read with a small parser (continuations, comments, exec/shell forms), enough
for the checks below; `hadolint Dockerfile` is the real linter (see the Dockerfile header).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BENTOFILE = ROOT / "bentofile.yaml"

# Limits the service reads (service/config.py) with their documented defaults.
LIMIT_DEFAULTS = {
    "LONGISYNTH_MAX_UPLOAD_BYTES": "1073741824",
    "LONGISYNTH_MAX_VOXELS": "268435456",
    "LONGISYNTH_MAX_TIMEPOINTS": "12",
    "LONGISYNTH_MAX_CONCURRENCY": "2",
    "LONGISYNTH_MAX_QUEUE": "8",
}
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "clang", "cmake", "python3.11-dev", "python3-dev")
PIN = re.compile(r"""["']?([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)["']?""")


# --------------------------------------------------------------------------- Dockerfile parser


@dataclasses.dataclass
class Instruction:
    keyword: str  # upper case, e.g. "RUN"
    value: str  # the arguments, continuations joined
    line: int  # 1-based line of the instruction's start


@dataclasses.dataclass
class Stage:
    image: str  # what FROM names: an image reference or an earlier stage's name
    name: str | None
    instructions: list[Instruction]


def parse_dockerfile(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of instructions (escape character ``\\``)."""
    instructions: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue  # blank line, comment or parser directive
        if buffer and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped by Docker
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        keyword, _, value = " ".join(part for part in buffer if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip(), start))
        buffer = []
    assert not buffer, "Dockerfile ends inside a continued instruction"

    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.value.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name, []))
        elif instruction.keyword in ("ARG", "SHELL") and not stages:
            continue  # global ARGs before the first FROM
        else:
            assert stages, f"line {instruction.line}: {instruction.keyword} before any FROM"
            stages[-1].instructions.append(instruction)
    return stages


def lineage(stages: list[Stage], index: int) -> list[Stage]:
    """The stage and every earlier stage it is built FROM (its layers end up in its image)."""
    by_name = {s.name: s for s in stages[:index] if s.name}
    chain = [stages[index]]
    while chain[-1].image in by_name:
        chain.append(by_name[chain[-1].image])
    return chain


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list) and all(isinstance(p, str) for p in parsed)
    return parsed


def env_pairs(value: str) -> dict[str, str]:
    """``ENV a=1 b="x y"`` -> {"a": "1", "b": "x y"} (the legacy ``ENV a 1`` form too)."""
    words = shlex.split(value)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def final_chain(stages: list[Stage]) -> list[Stage]:
    return lineage(stages, len(stages) - 1)


def all_of(chain: list[Stage], keyword: str) -> list[Instruction]:
    return [i for stage in reversed(chain) for i in stage.instructions if i.keyword == keyword]


# --------------------------------------------------------------------------- Dockerfile checks


def test_parser_handles_continuations_and_stages() -> None:
    text = "# syntax=docker/dockerfile:1\nFROM a:1 AS one\nRUN x \\\n    # note\n    && y\nFROM one\nUSER 5\n"
    parsed = parse_dockerfile(text)
    assert [(s.image, s.name) for s in parsed] == [("a:1", "one"), ("one", None)]
    assert parsed[0].instructions[0].value == "x && y"
    assert [s.image for s in lineage(parsed, 1)] == ["one", "a:1"]


def test_dockerfile_is_multi_stage_with_python_slim_builder(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert stages[0].name == "builder"
    assert re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*", stages[0].image), stages[0].image


def test_final_image_is_a_pinned_nvidia_cuda_cudnn_runtime(stages: list[Stage]) -> None:
    base = final_chain(stages)[-1].image
    repository, _, tag = base.partition(":")
    assert repository == "nvidia/cuda", base
    assert re.fullmatch(r"\d+\.\d+\.\d+-cudnn\d*-runtime-ubuntu\d+\.\d+", tag), base
    for stage in stages:
        image = stage.image
        if any(image == s.name for s in stages):
            continue
        assert ":" in image and not image.endswith(":latest"), f"unpinned base image {image}"


def test_final_image_runs_as_non_root(stages: list[Stage]) -> None:
    users = all_of(final_chain(stages), "USER")
    assert users, "no USER in the final image: it would run as root"
    user = users[-1].value.split(":")[0]
    assert user not in ("root", "0"), user
    assert not user.isdigit() or int(user) >= 1000, user
    useradd = " ".join(i.value for i in all_of(final_chain(stages), "RUN") if "useradd" in i.value)
    assert "longisynth" in useradd and "10001" in useradd, "user longisynth (uid 10001) is not created"


def test_final_image_has_healthcheck_on_healthz(stages: list[Stage]) -> None:
    checks = all_of(final_chain(stages), "HEALTHCHECK")
    assert checks, "no HEALTHCHECK"
    check = checks[-1].value
    assert not check.upper().startswith("NONE")
    assert "/healthz" in check and "3000" in check
    assert "curl" not in check and "wget" not in check, "no curl/wget in the final image"


def test_final_image_exposes_3000_and_serves(stages: list[Stage]) -> None:
    exposed = {port for i in all_of(final_chain(stages), "EXPOSE") for port in i.value.split()}
    assert {"3000", "3000/tcp"} & exposed, exposed
    cmd = exec_form(all_of(final_chain(stages), "CMD")[-1].value)
    via_bentoml = ["bentoml", "serve", "service.service:Longisynth"]
    served = cmd[:2] == ["longisynth", "serve"] or cmd[:3] == via_bentoml
    assert served and "3000" in cmd and "0.0.0.0" in cmd, cmd
    if cmd[0] == "bentoml":
        assert cmd[cmd.index("--working-dir") + 1] == "/app", cmd


def test_final_image_has_no_build_tools(stages: list[Stage]) -> None:
    for run in all_of(final_chain(stages), "RUN"):
        words = set(re.split(r"[\s;&|()]+", run.value))
        found = sorted(words & set(BUILD_TOOLS))
        assert not found, f"line {run.line}: build tools {found} in the final image"
        assert "pip install" not in run.value, f"line {run.line}: pip runs in the final image"
        if "apt-get install" in run.value:
            assert "--no-install-recommends" in run.value, f"line {run.line}"
            assert "rm -rf /var/lib/apt/lists" in run.value, f"line {run.line}: apt lists left behind"
    copies = all_of(final_chain(stages), "COPY")
    assert not any("--from=builder" in c.value for c in copies), "wheels/builder files copied into final"


def test_builder_uses_onnxruntime_gpu_and_never_torch(stages: list[Stage]) -> None:
    runs = " ".join(i.value for s in stages for i in s.instructions if i.keyword == "RUN")
    pins = dict(PIN.findall(runs))
    assert "onnxruntime-gpu" in pins and "onnxruntime" not in pins, pins
    assert not any(name.lower().startswith("torch") for name in pins), pins


def test_project_wheel_skips_the_cpu_onnxruntime_and_the_model_is_found(stages: list[Stage]) -> None:
    """pyproject asks for `onnxruntime` (CPU); the image installs longisynth --no-deps beside
    onnxruntime-gpu. The model is package data of the wheel, so nothing points the engine at it."""
    runs = [i.value for s in stages for i in s.instructions if i.keyword == "RUN"]
    installs = [r for r in runs if "pip install" in r and "longisynth" in r.split("pip install", 1)[1]]
    assert installs and all("--no-deps" in r for r in installs), installs
    env: dict[str, str] = {}
    for instruction in all_of(final_chain(stages), "ENV"):
        env.update(env_pairs(instruction.value))
    assert "LONGISYNTH_REFINER" not in env
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "refine/weights/*" in project["tool"]["setuptools"]["package-data"]["longisynth"]
    weights = ROOT / "longisynth" / "refine" / "weights"
    assert (weights / "refiner.onnx").is_file() and (weights / "refiner.json").is_file()


def test_final_image_documents_limits_without_baking_keys(stages: list[Stage]) -> None:
    env: dict[str, str] = {}
    for instruction in all_of(final_chain(stages), "ENV"):
        env.update(env_pairs(instruction.value))
    for name, default in LIMIT_DEFAULTS.items():
        assert env.get(name) == default, (name, env.get(name))
    assert "LONGISYNTH_API_KEYS" not in env, "API keys belong in `docker run -e`, not in the image"
    text = DOCKERFILE.read_text()
    for name in [*LIMIT_DEFAULTS, "LONGISYNTH_API_KEYS"]:
        assert f"#   {name}" in text, f"{name} is not documented in the Dockerfile header"


def test_documented_defaults_match_the_service() -> None:
    try:
        from service.config import Settings
    except ImportError as exc:  # the service package is optional for the engine's tests
        pytest.skip(f"service.config not importable: {exc}")
    settings = Settings.from_env({})
    assert {
        "LONGISYNTH_MAX_UPLOAD_BYTES": str(settings.max_upload_bytes),
        "LONGISYNTH_MAX_VOXELS": str(settings.max_voxels),
        "LONGISYNTH_MAX_TIMEPOINTS": str(settings.max_timepoints),
        "LONGISYNTH_MAX_CONCURRENCY": str(settings.max_concurrency),
        "LONGISYNTH_MAX_QUEUE": str(settings.max_queue),
    } == LIMIT_DEFAULTS
    assert settings.api_keys == ()


def test_build_context_sources_exist_and_dockerignore_is_tight(stages: list[Stage]) -> None:
    for stage in stages:
        for copy in (i for i in stage.instructions if i.keyword == "COPY"):
            words = [w for w in copy.value.split() if not w.startswith("--")]
            if any(w.startswith("--from=") for w in copy.value.split()):
                continue
            for source in words[:-1]:
                assert (ROOT / source).exists(), f"line {copy.line}: {source} missing from the context"
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    for entry in (".venv", ".git", "tests", "**/__pycache__", "**/*.zip", "benchmarks"):
        assert entry in ignored, f".dockerignore lacks {entry}"
    needed = {"longisynth", "service", "pyproject.toml", "README.md"}
    assert not needed & ignored, needed & ignored


# --------------------------------------------------------------------------- bentofile.yaml


@pytest.fixture(scope="module")
def bentofile() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML (installed with bentoml) is not available")
    return yaml.safe_load(BENTOFILE.read_text())


def test_bentofile_service_and_includes(bentofile: dict) -> None:
    assert bentofile["service"] == "service.service:Longisynth"
    include = bentofile["include"]
    for pattern in ("longisynth/**", "service/**"):
        assert pattern in include, pattern
    assert "clients/**" in bentofile.get("exclude", [])
    assert not any(p.startswith("clients") for p in include)


def test_bentofile_packages_are_pinned_and_cover_the_engine(bentofile: dict) -> None:
    packages = bentofile["python"]["packages"]
    pins = {}
    for line in packages:
        match = PIN.fullmatch(line.strip())
        assert match, f"not pinned with ==: {line!r}"
        pins[match[1].lower()] = match[2]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9._-]+", requirement)[0].lower()  # type: ignore[index]
        # the CUDA build of ONNX Runtime provides the same module (and the CPU provider)
        provided = name in pins or (name == "onnxruntime" and "onnxruntime-gpu" in pins)
        assert provided, f"engine dependency {name} is not pinned in bentofile.yaml"
    assert "bentoml" in pins
    assert "onnxruntime-gpu" in pins or "onnxruntime" in pins
    assert not any(name.startswith("torch") for name in pins)


def test_bentofile_and_dockerfile_pin_the_same_versions(bentofile: dict, stages: list[Stage]) -> None:
    matches = (PIN.fullmatch(line.strip()) for line in bentofile["python"]["packages"])
    bento = {m[1].lower(): m[2] for m in matches if m}
    runs = " ".join(i.value for i in stages[0].instructions if i.keyword == "RUN")
    docker = {name.lower(): version for name, version in PIN.findall(runs)}
    assert docker == bento


def test_bentofile_docker_options_and_envs(bentofile: dict) -> None:
    docker = bentofile["docker"]
    assert docker["python_version"] == "3.11"
    assert str(docker["cuda_version"]).startswith("12.")
    envs = {e["name"]: str(e["value"]) for e in bentofile.get("envs", [])}
    for name, default in LIMIT_DEFAULTS.items():
        assert envs.get(name) == default, name
    assert "LONGISYNTH_API_KEYS" not in envs


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_bentofile_validates_against_bentoml_schema() -> None:
    pytest.importorskip("bentoml", reason="bentoml is not installed")
    from bentoml._internal.bento.build_config import BentoBuildConfig

    with BENTOFILE.open() as stream:
        config = BentoBuildConfig.from_yaml(stream).with_defaults()
    assert config.docker.cuda_version is not None
    assert config.docker.cuda_version.startswith("12.")


@pytest.mark.slow
def test_installed_wheel_finds_its_model_outside_the_checkout(tmp_path: Path) -> None:
    """A non-editable install carries the refiner as package data: it loads from site-packages,
    with the checkout neither the working folder nor on the path."""
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("longisynth-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for member in (
        "refine/weights/refiner.onnx",
        "refine/weights/refiner.json",
        "vtt/static/index.html",
        "vtt/static/viewer.js",
        "review/static/review.html",
        "archetypes/data/glioblastoma.yaml",
    ):
        assert f"longisynth/{member}" in names, member
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import longisynth.refine.model as m; model, reason = m.load_refiner(m.DEFAULT_MODEL); "
        "print(m.DEFAULT_MODEL); print(model is not None, reason)"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target), "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert Path(out[0]).is_relative_to(target) and out[1] == "True "
    probe = "from longisynth.archetypes import builtin_registry; print(len(builtin_registry().names()))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert int(out[0]) >= 13  # the shipped archetypes load from site-packages
