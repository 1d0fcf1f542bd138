"""`deploy-verify init`: a starter for a team's own repository, so adopting the suite is `pip install` and one
command, not a fork.

    deploy-verify init [--dir DIR] [--name staging] [--repo OWNER/REPO] [--ref TAG] [--force]

It writes an environment file, a release manifest, a pytest.ini, a features/ folder and a CI workflow that calls this
project's reusable workflow, from the templates in deploy_verify/templates. The commands a gate runs (the install
and the pytest line) are made here once: the starter prints them, the reusable workflow runs them, and the tests
check that both agree (tests/test_workflows.py, tests/test_install.py).
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

PROG = "deploy-verify"
PACKAGE = "deploy-verify"
# Placeholders a user must replace: a guessed owner or tag would call someone else's workflow.
PLACEHOLDER_REPO = "OWNER/REPO"
PLACEHOLDER_REF = "TAG"
DEFAULT_NAME = "staging"
REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def package_spec(repo: str, ref: str) -> str:
    """The pip requirement for the package at one tag of a GitHub repository (PEP 508 direct reference)."""
    return f"{PACKAGE} @ git+https://github.com/{repo}@{ref}"


def install_command(package: str, python: str = "python") -> list[str]:
    """How the reusable workflow installs the suite (and how tests/test_install.py does, with its venv's python)."""
    return [python, "-m", "pip", "install", package]


def gate_command(env: str, markers: str, python: str = "python") -> list[str]:
    """The gate: no path argument, so the repository's pytest.ini (testpaths, deploy_verify_features) decides what is
    collected and the built-in scenarios come with it; the environment and the phase are always named."""
    return [python, "-m", "pytest", "--env", env, "-m", markers]


@dataclass(frozen=True)
class Starter:
    """One file `init` writes: where (relative to the target folder, `{name}` the environment) and from which
    template. The workflow template is not called verify.yml under .github/ because package-data globs skip
    dot-folders."""

    destination: str
    template: str
    what: str


STARTER = (
    Starter("environments/{name}.yaml", "environment.yaml", "the environment: clusters, components, what to check"),
    Starter("releases/{name}.yaml", "release.yaml", "a release manifest: the versions that should run"),
    Starter("pytest.ini", "pytest.ini", "pytest options: where environments, features and reports are"),
    Starter("features/README.md", "features/README.md", "your own scenarios go here (optional)"),
    Starter(".github/workflows/verify.yml", "workflow.yml", "CI: calls the reusable workflow {repo}@{ref}"),
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG,
        description="Deployment verification as a pytest plugin: `python -m pytest --env NAME -m postdeploy` is the "
        "gate. This command writes a starter repository for it.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    init = commands.add_parser(
        "init",
        help="write a starter: environment, release manifest, pytest.ini, features/, CI workflow",
        description="Write a starter into DIR: environments/NAME.yaml, releases/NAME.yaml, pytest.ini, "
        "features/README.md and .github/workflows/verify.yml (which calls the reusable workflow "
        "REPO/.github/workflows/verify.yml@REF and installs the package from the same tag). Existing files are "
        "never overwritten without --force.",
    )
    init.add_argument("--dir", type=Path, default=Path(), help="target folder (default: the current one)")
    init.add_argument(
        "--name", type=_env_name, default=DEFAULT_NAME, help=f"environment name (default: {DEFAULT_NAME})"
    )
    init.add_argument(
        "--repo",
        type=_matching(REPO, "OWNER/REPO, a GitHub repository"),
        default=PLACEHOLDER_REPO,
        help=f"GitHub repository of deploy-verify the workflow calls (default: the placeholder {PLACEHOLDER_REPO})",
    )
    init.add_argument(
        "--ref",
        type=_matching(REF, "a tag, branch or commit"),
        default=PLACEHOLDER_REF,
        help=f"tag (or commit) of that repository (default: the placeholder {PLACEHOLDER_REF})",
    )
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # One subcommand today; argparse already refused any other.
    return init(args.dir, args.name, args.repo, args.ref, force=args.force)


def init(target: Path, name: str, repo: str, ref: str, *, force: bool) -> int:
    values = {"NAME": name, "REPO": repo, "REF": ref, "PACKAGE": package_spec(repo, ref), "KINDS": _kinds_comment()}
    files = {target / s.destination.format(name=name): render(s.template, values) for s in STARTER}
    existing = [path for path in files if path.exists()]
    if existing and not force:
        # All or nothing: half a starter next to a user's own files is harder to sort out than none.
        shown = ", ".join(str(p) for p in existing)
        return _fail(f"not overwriting {shown} (nothing written; --force replaces them)")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    _report(target, name, repo, ref, force=bool(existing))
    return 0


def render(template: str, values: dict[str, str]) -> str:
    """A template with its %%KEY%% placeholders filled; `%%` never occurs otherwise in them, and a leftover one is a
    bug in the template, not something to write out."""
    text = (resources.files("deploy_verify") / "templates" / template).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"%%{key}%%", value)
    leftover = re.search(r"%%[A-Z]+%%", text)
    if leftover:
        raise LookupError(f"template {template}: no value for {leftover.group()}")
    return text


def _kinds_comment() -> str:
    """The registered kinds as YAML comment lines, so the list never lags behind deploy_verify.kinds."""
    from deploy_verify.kinds import KINDS

    width = max(len(k) for k in KINDS)
    return "\n".join(f"#   {name:<{width}}  {kind.marker}" for name, kind in KINDS.items())


def _report(target: Path, name: str, repo: str, ref: str, *, force: bool) -> None:
    shown = "." if target == Path() else str(target)
    print(f"{PROG} init: {'rewrote' if force else 'wrote'} {len(STARTER)} files in {shown}")
    rows = [(s.destination.format(name=name), s.what.format(repo=repo, ref=ref)) for s in STARTER]
    width = max(len(path) for path, _ in rows)
    for path, what in rows:
        print(f"  {path:<{width}}  {what}")
    release = f"releases/{name}.yaml"
    steps = [f"describe what runs in environments/{name}.yaml and what should run in {release}"]
    if target != Path():
        steps.append(f"cd {shlex.quote(str(target))}")
    steps += [
        shlex.join([*gate_command(name, "postdeploy"), "--collect-only", "-q"]) + "   # what the gate would run",
        shlex.join([*gate_command(name, "postdeploy"), "--release", release]),
    ]
    if repo == PLACEHOLDER_REPO or ref == PLACEHOLDER_REF:
        steps.append(
            f"replace {PLACEHOLDER_REPO} and {PLACEHOLDER_REF} in .github/workflows/verify.yml with deploy-verify's "
            f"repository and tag (or run: {PROG} init --repo OWNER/REPO --ref vX.Y.Z --force)"
        )
    steps.append("commit; in CI the workflow needs the secret KUBECONFIG_B64 on the GitHub environment " + name)
    print("Next:")
    for number, step in enumerate(steps, 1):
        print(f"  {number}. {step}")


def _env_name(value: str) -> str:
    from deploy_verify.config import NAME  # the loader's own rule, so init never writes a file --env refuses

    if not re.match(NAME, value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an environment name: lowercase letters, digits and '-'")
    return value


def _matching(pattern: re.Pattern[str], expected: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise argparse.ArgumentTypeError(f"{value!r}: expected {expected}")
        return value

    return check


def _version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:  # imported from a checkout that was never installed
        return "unknown (not installed)"


def _fail(message: str) -> int:
    print(f"{PROG} init: {message}", file=sys.stderr)
    return 1
