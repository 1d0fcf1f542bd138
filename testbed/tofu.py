"""The OpenTofu testbed: the binary and provider mirror testbed/tofu/build.sh caches, and working directories made
and applied with them, for the @drift tests.

    workdir = make_workdir(tmp_path / "infra", {"motd": "hello\\n"})   # main.tf with local_file.motd
    apply(workdir)                                                        # init + apply, as a pipeline would
    (workdir / "motd.txt").write_text("changed by hand\\n")              # drift, seen on refresh

Everything runs offline: the CLI config names only the filesystem mirror, so init never reaches a registry.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = "testbed/tofu/build.sh (or make tools)"
TIMEOUT = 120.0  # one init or apply on the local provider takes well under a second; this only catches a hang


class TofuMissing(RuntimeError):
    """The cached binary or CLI config is not there: the build has not run for the pinned versions."""


def versions() -> dict[str, str]:
    """testbed/tofu/versions.env as a mapping (plain shell assignments)."""
    lines = (HERE / "tofu" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.lstrip().startswith("#"))


def cache_dir() -> Path:
    """Where build.sh puts this version: ${DV_CACHE_DIR:-~/.cache/deploy-verify}/tofu/<TOFU_VERSION>."""
    root = Path(os.environ.get("DV_CACHE_DIR") or Path.home() / ".cache" / "deploy-verify")
    return root / "tofu" / versions()["TOFU_VERSION"]


def tofu_binary() -> Path:
    """The cached tofu binary; raises with the build command when it is missing."""
    return _built(cache_dir() / "bin" / "tofu", "the OpenTofu binary")


def cli_config() -> Path:
    """The CLI config naming the provider mirror (for TF_CLI_CONFIG_FILE); raises with the build command."""
    return _built(cache_dir() / "tofu.rc", "the OpenTofu CLI config")


def provider_version() -> str:
    """The hashicorp/local version the mirror serves, for `required_providers`."""
    return versions()["LOCAL_PROVIDER_VERSION"]


def _built(path: Path, what: str) -> Path:
    if not path.is_file():
        raise TofuMissing(f"{what} is not built at {path}: run {BUILD}")
    return path


def tool_env(data_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the testbed runs tofu with: the mirror's CLI config, a data dir outside the working
    directory, and nothing that could change what the commands do (TF_CLI_ARGS*)."""
    variables = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("TF_CLI_ARGS")}
    variables.update(
        TF_CLI_CONFIG_FILE=str(cli_config()),
        TF_DATA_DIR=str(data_dir),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
    )
    return variables


def local_files_config(files: Mapping[str, str], extra: str = "") -> str:
    """main.tf with one local_file per entry (name -> content), the file next to main.tf as NAME.txt."""
    blocks = [
        "terraform {\n  required_providers {\n"
        f'    local = {{ source = "hashicorp/local", version = "{provider_version()}" }}\n  }}\n}}\n'
    ]
    for name, content in files.items():
        blocks.append(
            f'resource "local_file" "{name}" {{\n'
            f'  filename = "${{path.module}}/{name}.txt"\n'
            f"  content  = {_hcl_string(content)}\n}}\n"
        )
    return "\n".join([*blocks, extra]).rstrip() + "\n"


def _hcl_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("${", "$${")
    return f'"{escaped}"'


def make_workdir(workdir: Path, files: Mapping[str, str], extra: str = "") -> Path:
    """A working directory whose main.tf manages `files` (see local_files_config); returns it."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "main.tf").write_text(local_files_config(files, extra))
    return workdir


def data_dir_for(workdir: Path) -> Path:
    """The testbed's own TF_DATA_DIR for a working directory: beside it, so the directory holds only what a
    team commits (main.tf, .terraform.lock.hcl) and the local state."""
    return workdir.parent / f".{workdir.name}.tfdata"


def tofu(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """One tofu command in `workdir` with the testbed's environment; raises with its output when it fails."""
    done = subprocess.run(
        [str(tofu_binary()), *args, "-no-color"],
        cwd=workdir,
        env=tool_env(data_dir_for(workdir)),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"tofu {' '.join(args)} in {workdir} exited {done.returncode}: {done.stderr or done.stdout}")
    return done


def apply(workdir: Path, *var_args: str) -> None:
    """init (which writes .terraform.lock.hcl, as a team commits it) and apply, as a deploy pipeline would."""
    tofu(workdir, "init", "-input=false")
    tofu(workdir, "apply", "-auto-approve", "-input=false", *var_args)


def saved_plan(workdir: Path, out: Path) -> Path:
    """What a pipeline saves: `plan -out` then `show -json` of it, written to `out`; returns `out`."""
    plan_file = data_dir_for(workdir) / "saved.tfplan"
    tofu(workdir, "init", "-input=false")
    tofu(workdir, "plan", "-input=false", f"-out={plan_file}")
    out.write_text(tofu(workdir, "show", "-json", str(plan_file)).stdout)
    return out
