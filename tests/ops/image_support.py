"""What `docker build` would put in the image, without Docker: the Dockerfile's COPY set, .dockerignore, a fresh venv.

Only the subset of Dockerfile and .dockerignore syntax this project uses is understood: WORKDIR, COPY/ADD from the
build context (shell or JSON form, flags skipped, `--from` stages left out), and ignore patterns with `*`, `?`,
`**` and `!` exceptions, where a pattern that matches a directory excludes everything below it (as Docker's does).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = ["Copy", "DockerIgnore", "Dockerfile", "clean_env", "fresh_venv", "run", "stage", "subcommands"]


@dataclass(frozen=True)
class Copy:
    """One COPY: build-context sources and an absolute destination in the image."""

    sources: tuple[str, ...]
    dest: PurePosixPath
    into_dir: bool  # `COPY a b ./` puts each source inside dest; `COPY a b` writes a file at b


@dataclass(frozen=True)
class Dockerfile:
    copies: tuple[Copy, ...]
    workdir: PurePosixPath  # the last WORKDIR, where `pip install .` runs

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        workdir, copies = PurePosixPath("/"), []
        for keyword, args in _instructions(path.read_text()):
            if keyword == "WORKDIR":
                workdir = workdir / args
            elif keyword in {"COPY", "ADD"}:
                words = json.loads(args) if args.startswith("[") else shlex.split(args)
                if any(word.startswith("--from") for word in words):
                    continue  # copies from another stage, not from the build context
                *sources, dest = [word for word in words if not word.startswith("--")]
                into_dir = dest.endswith("/") or dest in {".", ".."} or len(sources) > 1
                copies.append(Copy(tuple(sources), workdir / dest, into_dir))
        return cls(tuple(copies), workdir)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, with comments dropped and `\\` continuations joined."""
    joined, pending = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        joined.append(pending + line)
        pending = ""
    return [(word.upper(), rest.strip()) for word, _, rest in (line.strip().partition(" ") for line in joined) if word]


@dataclass(frozen=True)
class DockerIgnore:
    rules: tuple[tuple[bool, re.Pattern[str]], ...]  # (is an `!` exception, pattern), in file order

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        lines = path.read_text().splitlines() if path.exists() else []
        patterns = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        return cls(tuple((p.startswith("!"), _regex(p.removeprefix("!"))) for p in patterns))

    def excludes(self, path: str) -> bool:
        """Whether a context-relative path is left out of the build context; the last matching rule wins."""
        excluded = False
        for exception, regex in self.rules:
            if regex.match(path):
                excluded = not exception
        return excluded


def _regex(pattern: str) -> re.Pattern[str]:
    pattern = posixpath.normpath(pattern.strip().lstrip("/"))
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    # The optional tail makes a pattern that names a directory cover everything inside it.
    return re.compile(out + r"(?:/.*)?\Z")


def stage(context: Path, dockerfile: Dockerfile, ignore: DockerIgnore, image: Path) -> None:
    """Copy into `image` (the image's `/`) exactly the files the Dockerfile's COPY lines would."""
    for copy in dockerfile.copies:
        dest = image / str(copy.dest).lstrip("/")
        for source in copy.sources:
            matches = [m for m in sorted(context.glob(source)) if not ignore.excludes(_rel(m, context))]
            assert matches, f"COPY {source}: not in the build context or excluded by .dockerignore"
            for match in matches:
                if match.is_dir():
                    for file in sorted(match.rglob("*")):
                        if file.is_file() and not ignore.excludes(_rel(file, context)):
                            _put(file, dest / file.relative_to(match))
                else:
                    _put(match, dest / match.name if copy.into_dir else dest)


def _rel(path: Path, context: Path) -> str:
    return path.relative_to(context).as_posix()


def _put(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def fresh_venv(path: Path) -> Path:
    """A venv without pip or the project whose third-party packages are the running venv's; returns its python.

    A directory named in a `.pth` file is only appended to sys.path: its own `.pth` files are not run, so the
    running venv's editable finder for this project is never installed in the new one.
    """
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    scheme = {"base": str(path), "platbase": str(path)}
    own = Path(sysconfig.get_path("purelib", vars=scheme))
    borrowed = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (own / "borrowed-dependencies.pth").write_text("".join(f"{p}\n" for p in borrowed))
    return path / "bin" / "python"


def clean_env(bin_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for the image's commands: no PYTHONPATH into the repo, wide plain help output."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return env | {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", **extra}


def subcommands(help_text: str) -> list[str]:
    """The names in a typer/click help page's Commands section (a rich panel, or click's plain `Commands:`)."""
    names, inside = [], False
    for line in help_text.splitlines():
        if re.match(r"\s*(?:╭─ )?Commands\b", line):
            inside = True
        elif inside and (not line.strip() or line.startswith("╰")):
            inside = False
        elif inside and (match := re.match(r" {1,2}(\S+)", line.lstrip("│"))):
            names.append(match.group(1))
    return names


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
