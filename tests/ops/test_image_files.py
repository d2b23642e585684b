"""The container image installs everything the console script needs (issue 16), proved without Docker.

Exactly the files the Dockerfile copies (after .dockerignore) are installed into a fresh venv whose third-party
packages come from this venv, and the installed `exact-pipeline` answers every `--help` from a directory outside
the repo and migrates a database, as the compose `migrate` service does.
"""

from __future__ import annotations

import json
import sqlite3
import tomllib
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from runtime.migrate import alembic_config
from tests.ops.image_support import Dockerfile, DockerIgnore, clean_env, fresh_venv, run, stage, subcommands

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = sorted({p.split(".")[0].rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]})
SCRIPTS = sorted(PYPROJECT["project"]["scripts"])
DEV_ONLY = {"tests", "bench"}  # packages of the repo that never ship; .dockerignore keeps them out of the context
KEPT_OUT = """
    .git/HEAD .venv/pyvenv.cfg tests/conftest.py bench/README.md runtime/__pycache__/db.cpython-311.pyc exact/_x.pyc
    .env .env.local test.db runtime/exact.db-wal exact_pipeline.egg-info/PKG-INFO build/lib/runtime/db.py
    dist/exact_pipeline-0.1.0.tar.gz .mypy_cache/3.11/x.json .ruff_cache/x .pytest_cache/v/x .hypothesis/examples/x
    celerybeat-schedule.db RELIABILITY.md
""".split()
KEPT_IN = ["pyproject.toml", "README.md", "runtime/__init__.py", "runtime/migrations/script.py.mako", "ops/py.typed"]


@dataclass(frozen=True)
class Image:
    bin: Path
    env: dict[str, str]
    cwd: Path  # outside the repo, so nothing resolves against the source tree
    database: Path  # the SQLite file DATABASE_URL names


def _staged(image: Path) -> Path:
    dockerfile = Dockerfile.read(ROOT / "Dockerfile")
    stage(ROOT, dockerfile, DockerIgnore.read(ROOT / ".dockerignore"), image)
    return image / str(dockerfile.workdir).lstrip("/")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    root = tmp_path_factory.mktemp("image")
    workdir = _staged(root / "fs")
    python = fresh_venv(root / "venv")
    database = root / "image.db"
    env, cwd = clean_env(python.parent, DATABASE_URL=f"sqlite:///{database}"), root
    probe = "import importlib.util as u, json, sys; print(json.dumps([[p for p in sys.argv[1:] if u.find_spec(p)], "
    probe += "[m for m in sys.modules if m.startswith('__editable__')], bool(u.find_spec('typer'))]))"
    found, editable, has_deps = json.loads(run([str(python), "-c", probe, *PACKAGES], env, cwd).stdout)
    # Without this the test could pass on the repo's own packages rather than on what the image holds.
    assert (found, editable, has_deps) == ([], [], True), "the fresh venv must see the dependencies, not the project"
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--ignore-installed"]
    installed = run([*pip, str(workdir)], env, cwd)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return Image(python.parent, env, cwd, database)


def test_dockerfile_copies_every_package(tmp_path: Path) -> None:
    workdir = _staged(tmp_path)
    copied = {path.name for path in workdir.iterdir() if path.is_dir()}
    repo = {path.name for path in ROOT.iterdir() if (path / "__init__.py").is_file()} - DEV_ONLY
    assert {"pyproject.toml", "README.md"} <= {path.name for path in workdir.iterdir()}
    assert sorted(set(PACKAGES) - copied) == [], "pyproject.toml includes these but the Dockerfile does not copy them"
    assert sorted(repo - set(PACKAGES)) == [], "packages of the repo that pyproject.toml's include leaves out"


def test_dockerignore_keeps_dev_files_and_secrets_out() -> None:
    ignore = DockerIgnore.read(ROOT / ".dockerignore")
    assert (ROOT / ".dockerignore").is_file()
    assert [path for path in KEPT_OUT if not ignore.excludes(path)] == []
    assert [path for path in KEPT_IN if ignore.excludes(path)] == []


# Walks every command's `--help` in one process of the image's venv: each help page as its own process cost some 30
# full CLI imports (~2 minutes a CI pass) and proved nothing more, since `cli.main` mounts every command at import.
_WALK = r"""
import json, typer.main
from typer.testing import CliRunner
import cli.main as cli_main
cli_main._mount()
root, runner, pages = typer.main.get_command(cli_main.app), CliRunner(), {}
def walk(command, path):
    result = runner.invoke(cli_main.app, [*path, "--help"], prog_name="exact-pipeline", env={"COLUMNS": "200"})
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    pages[" ".join(["exact-pipeline", *path])] = [result.exit_code, result.output, "" if error is None else repr(error)]
    if hasattr(command, "list_commands"):  # a group (typer vendors click, so no isinstance on click's classes)
        context = command.context_class(command)
        for name in command.list_commands(context):
            walk(command.get_command(context, name), [*path, name])
walk(root, [])
print(json.dumps(pages))
"""


def _help_pages(image: Image) -> dict[str, tuple[int, str, str]]:
    """`--help` of every command and subcommand, each as (exit code, output, exception), from the installed CLI."""
    walked = run([str(image.bin / "python"), "-c", _WALK], image.env, image.cwd)
    assert walked.returncode == 0, walked.stdout[-2000:] + walked.stderr[-2000:]
    return {argv: (code, output, error) for argv, (code, output, error) in json.loads(walked.stdout).items()}


@pytest.mark.slow  # a fresh venv and the installed CLI's processes
def test_installed_image_answers_every_help(image: Image) -> None:
    pages = _help_pages(image)
    failed = {argv: page for argv, page in pages.items() if page[0] or page[2] or "Traceback" in page[1]}
    assert failed == {}
    # The console script itself, as a process: its help lists exactly the commands walked above.
    for script in SCRIPTS:
        shown = run([str(image.bin / script), "--help"], image.env, image.cwd)
        assert shown.returncode == 0, shown.stderr[-2000:]
        assert "Traceback" not in shown.stdout + shown.stderr
        listed = subcommands(shown.stdout)
        assert listed, "no subcommand was found in the help output"
        assert sorted(listed) == sorted(argv.split()[1] for argv in pages if len(argv.split()) == 2)
    nested = run([str(image.bin / SCRIPTS[0]), "db", "upgrade", "--help"], image.env, image.cwd)
    assert nested.returncode == 0, nested.stdout + nested.stderr


def test_installed_image_migrates_a_database(image: Image) -> None:
    result = run([str(image.bin / "exact-pipeline"), "db", "upgrade"], image.env, image.cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    # An image without its migration files "upgrades" to an empty head, so compare with the repo's head.
    with closing(sqlite3.connect(image.database)) as conn:
        revisions = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    assert revisions == set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())
