"""@drift with the real OpenTofu and hashicorp/local provider that testbed/tofu/build.sh builds: a working directory
applied as a pipeline would, then changed by hand or in its code, planned by checks.drift; saved plans; a plan that
cannot be made (init, lock, timeout, no binary); and the built-in scenario run through pytest with an environment
file. Missing binaries fail every test with the build command, never skip."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from deploy_verify.checks.deadline import CallTimeouts, Deadline
from deploy_verify.checks.drift import (
    CHECK,
    CannotPlan,
    Plan,
    PlanRequest,
    changes_of,
    judge,
    plan_working_dir,
    read_plan_json,
    tofu_command,
)
from deploy_verify.checks.result import Category, CheckResult, Verdict
from deploy_verify.checks.runner import attempt
from testbed import tofu as tb

ROOT = Path(__file__).resolve().parent.parent
WHERE = "Terraform:infra"
GONE = "not found on refresh: deleted or replaced outside OpenTofu"
TAIL = "apply the code, or bring the code in line with what runs"
INIT = "tofu init -input=false -no-color -lock-timeout=0s"
NULL = 'resource "null_resource" "x" {}\n'  # hashicorp/null: not in the mirror
PLAN = "tofu plan -input=false -no-color -detailed-exitcode -lock-timeout=0s -out=PLANFILE"


@pytest.fixture(scope="module")
def built() -> tuple[Path, Path]:
    """(tofu, CLI config): a failure with the build command when they are not built."""
    try:
        return tb.tofu_binary(), tb.cli_config()
    except tb.TofuMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def tool_env(built: tuple[Path, Path]) -> dict[str, str]:
    """What the check runs with: the caller's environment, the built tofu (a `terraform` on PATH must not be the one
    used) and the mirror's CLI config (as a team's CI sets its own)."""
    return {**os.environ, "DV_TOFU": str(built[0]), "TF_CLI_CONFIG_FILE": str(built[1])}


@pytest.fixture
def infra(tmp_path: Path, built: tuple[Path, Path]) -> Path:
    """Two files managed by OpenTofu, applied: what runs matches the code."""
    workdir = tb.make_workdir(tmp_path / "infra", {"motd": "hello\n", "banner": "welcome\n"})
    tb.apply(workdir)
    return workdir


def run_check(workdir: Path, env: dict[str, str], deadline: Deadline | None = None, **request: object) -> CheckResult:
    """The check as the step runs it: plan the working dir, judge it, exceptions turned into results."""
    given = PlanRequest(str(workdir), **request)  # type: ignore[arg-type]
    budget = deadline or Deadline.after(120)
    return attempt(CHECK, WHERE, lambda: judge(CHECK, WHERE, plan_working_dir(tofu_command(env), given, budget, env)))


def listing(workdir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(workdir)): p.read_bytes() for p in sorted(workdir.rglob("*")) if p.is_file()}


def summary(result: CheckResult) -> dict[str, Any]:
    assert [e.name for e in result.evidence] == ["plan summary"]
    found: dict[str, Any] = json.loads(result.evidence[0].content)
    return found


# --- a working directory, planned with the real binary ------------------------------------------------------------


def test_no_drift_is_green_and_leaves_the_working_dir_as_found(infra: Path, tool_env: dict[str, str]) -> None:
    before = listing(infra)
    result = run_check(infra, tool_env)
    assert (result.verdict, result.message) == (Verdict.PASS, "no drift: 2 resources match")
    assert listing(infra) == before  # no .terraform, the lock file and the state untouched
    assert summary(result) == {
        "source": f"plan of {infra}",
        "commands": [f"{INIT} -lockfile=readonly", PLAN, "tofu show -json -no-color PLANFILE"],
        "managed_resources": 2,
        "changes": [],
    }


def test_a_file_changed_by_hand_is_drift_named_by_address(infra: Path, tool_env: dict[str, str]) -> None:
    (infra / "motd.txt").write_text("changed by hand\n")
    result = run_check(infra, tool_env)
    assert (result.verdict, result.category) == (Verdict.FAIL, Category.DRIFT)
    assert result.message == f"1 change in the plan of {infra}: local_file.motd: create ({GONE}); {TAIL}"
    assert summary(result)["changes"] == [{"address": "local_file.motd", "action": f"create ({GONE})", "reason": ""}]
    assert "changed by hand" not in json.dumps(summary(result))  # addresses and actions, never values


def test_a_deleted_file_is_drift(infra: Path, tool_env: dict[str, str]) -> None:
    (infra / "banner.txt").unlink()
    result = run_check(infra, tool_env)
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        f"1 change in the plan of {infra}: local_file.banner: create ({GONE}); {TAIL}",
    )


def test_code_not_yet_applied_is_drift_with_each_action(infra: Path, tool_env: dict[str, str]) -> None:
    tb.make_workdir(infra, {"motd": "hello again\n", "extra": "new\n"})  # banner removed, motd edited, extra added
    result = run_check(infra, tool_env)
    assert (result.verdict, result.category) == (Verdict.FAIL, Category.DRIFT)
    assert result.message == (
        f"3 changes in the plan of {infra}: local_file.banner: delete; local_file.extra: create; "
        f"local_file.motd: replace; {TAIL}"
    )
    reasons = {c["address"]: c["reason"] for c in summary(result)["changes"]}
    assert reasons == {
        "local_file.banner": "delete_because_no_resource_config",
        "local_file.extra": "",
        "local_file.motd": "replace_because_cannot_update",
    }


def test_a_new_output_not_applied_is_a_change(infra: Path, tool_env: dict[str, str]) -> None:
    files = {"motd": "hello\n", "banner": "welcome\n"}
    tb.make_workdir(infra, files, 'output "motd_path" {\n  value = local_file.motd.filename\n}\n')
    result = run_check(infra, tool_env)
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        f"1 change in the plan of {infra}: output.motd_path: create; {TAIL}",
    )


def test_a_provider_missing_from_the_mirror_is_an_error_of_init(infra: Path, tool_env: dict[str, str]) -> None:
    (infra / "null.tf").write_text(NULL)
    (infra / ".terraform.lock.hcl").unlink()  # else readonly init stops at the lock file first (next test)
    result = run_check(infra, tool_env)
    assert (result.verdict, result.category) == (Verdict.ERROR, Category.UNDECIDED)
    assert result.message.startswith(f"cannot plan {infra}: `{INIT}` exited 1: ")
    assert (
        "Error: Failed to query available provider packages | Could not retrieve the list of available versions "
        "for provider | hashicorp/null: provider registry.opentofu.org/hashicorp/null was not found | in any of the "
        "search locations; init failed" in result.message
    )
    assert result.message.endswith(
        "; init failed: check the backend, the provider sources and the CLI config (TF_CLI_CONFIG_FILE)"
    )
    assert not (infra / ".terraform.lock.hcl").exists()  # init wrote none that stayed behind


def test_a_lock_file_behind_the_code_is_an_error_saying_so(infra: Path, tool_env: dict[str, str]) -> None:
    lock = b'# This file is maintained automatically by "tofu init".\n'  # pins nothing the code needs
    (infra / ".terraform.lock.hcl").write_bytes(lock)
    result = run_check(infra, tool_env)
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith(f"cannot plan {infra}: `{INIT} -lockfile=readonly` exited 1: ")
    assert result.message.endswith(
        "; the providers the configuration needs differ from .terraform.lock.hcl: run `tofu init`, commit the lock file"
    )
    assert (infra / ".terraform.lock.hcl").read_bytes() == lock  # read-only: the team's pins are never rewritten


def test_a_syntax_error_is_an_error_with_the_line(infra: Path, tool_env: dict[str, str]) -> None:
    (infra / "broken.tf").write_text('resource "local_file" "x" {\n  filename = \n}\n')
    result = run_check(infra, tool_env)
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith(f"cannot plan {infra}: `{INIT} -lockfile=readonly` exited 1: ")
    assert "broken.tf line 2" in result.message


def test_a_state_locked_by_another_run_is_an_error_naming_the_holder(infra: Path, tool_env: dict[str, str]) -> None:
    # `tofu console` holds the state lock while it waits for input: a real concurrent run, real lock info.
    env = tb.tool_env(tb.data_dir_for(infra))
    holder = subprocess.Popen(
        [str(tb.tofu_binary()), "console", "-no-color"],
        cwd=infra,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        info = infra / ".terraform.tfstate.lock.info"
        for _ in range(100):
            if info.exists() and info.stat().st_size:
                break
            time.sleep(0.1)
        lock_id = json.loads(info.read_text())["ID"]
        result = run_check(infra, tool_env)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith(f"cannot plan {infra}: the state is locked by another run (ID {lock_id}, held by ")
    assert result.message.endswith(
        f" UTC): `{PLAN}` stopped; wait for that run to finish (or `tofu force-unlock ID` if it died), then verify again"
    )


def test_var_files_and_a_workspace_are_planned_as_the_deploy_does(tmp_path: Path, tool_env: dict[str, str]) -> None:
    extra = 'variable "greeting" {\n  type = string\n}\n'
    workdir = tb.make_workdir(tmp_path / "infra", {}, extra)
    (workdir / "main.tf").write_text(
        (workdir / "main.tf").read_text()
        + 'resource "local_file" "motd" {\n  filename = "${path.module}/${terraform.workspace}.txt"\n'
        "  content  = var.greeting\n}\n"
    )
    (workdir / "blue.tfvars").write_text('greeting = "hello blue"\n')
    tb.tofu(workdir, "init", "-input=false")
    tb.tofu(workdir, "workspace", "new", "blue")
    tb.apply(workdir, "-var-file=blue.tfvars")
    tb.tofu(workdir, "workspace", "select", "default")  # what the checkout's own selection says must not matter
    env = {**tool_env, "TF_WORKSPACE": "default"}  # a CI's own selection: the component's workspace wins
    blue = run_check(workdir, env, var_files=(str(workdir / "blue.tfvars"),), workspace="blue")
    assert (blue.verdict, blue.message) == (Verdict.PASS, "no drift: 1 resource matches")
    assert summary(blue)["commands"][1] == "tofu workspace select -no-color blue"

    (workdir / "green.tfvars").write_text('greeting = "hello green"\n')
    wrong = run_check(workdir, tool_env, var_files=(str(workdir / "green.tfvars"),), workspace="blue")
    assert (wrong.verdict, wrong.message) == (
        Verdict.FAIL,
        f"1 change in the plan of {workdir}: local_file.motd: replace; {TAIL}",
    )

    missing = run_check(workdir, tool_env, var_files=(str(workdir / "blue.tfvars"),), workspace="purple")
    assert missing.verdict is Verdict.ERROR
    assert missing.message.startswith(f"cannot plan {workdir}: `tofu workspace select -no-color purple` exited 1: ")
    assert 'Workspace "purple" doesn\'t exist' in missing.message


def test_a_working_dir_without_a_lock_file_is_left_without_one(tmp_path: Path, tool_env: dict[str, str]) -> None:
    workdir = tb.make_workdir(tmp_path / "infra", {"motd": "hello\n"})
    tb.apply(workdir)
    (workdir / ".terraform.lock.hcl").unlink()  # a team that does not commit it
    before = listing(workdir)
    result = run_check(workdir, tool_env)
    assert (result.verdict, result.message) == (Verdict.PASS, "no drift: 1 resource matches")
    assert summary(result)["commands"][0] == INIT  # not readonly: there is nothing to keep
    assert listing(workdir) == before


def test_tf_cli_args_cannot_turn_refresh_off(infra: Path, tool_env: dict[str, str]) -> None:
    (infra / "motd.txt").write_text("changed by hand\n")
    env = {**tool_env, "TF_CLI_ARGS": "-refresh=false", "TF_CLI_ARGS_plan": "-refresh=false"}
    result = run_check(infra, env)
    assert (result.verdict, result.message) == (
        Verdict.FAIL,
        f"1 change in the plan of {infra}: local_file.motd: create ({GONE}); {TAIL}",
    )


def test_a_missing_working_dir_is_an_error(tmp_path: Path, tool_env: dict[str, str]) -> None:
    result = run_check(tmp_path / "nowhere", tool_env)
    assert (result.verdict, result.message) == (
        Verdict.ERROR,
        f"working_dir {tmp_path / 'nowhere'} is not a directory: is the infrastructure code checked out there?",
    )


# --- saved plans ----------------------------------------------------------------------------------------------------


def test_a_saved_plan_without_changes_is_green(infra: Path, tmp_path: Path) -> None:
    saved = tb.saved_plan(infra, tmp_path / "plan.json")
    result = judge(CHECK, WHERE, read_plan_json(str(saved)))
    assert (result.verdict, result.message) == (Verdict.PASS, "no drift: 2 resources match")
    assert summary(result)["source"] == f"saved plan {saved}"


def test_a_saved_plan_with_changes_is_red(infra: Path, tmp_path: Path) -> None:
    (infra / "motd.txt").unlink()
    tb.make_workdir(infra, {"motd": "hello\n", "banner": "welcome, changed in code\n"})
    saved = tb.saved_plan(infra, tmp_path / "plan.json")
    result = judge(CHECK, WHERE, read_plan_json(str(saved)))
    assert (result.verdict, result.category) == (Verdict.FAIL, Category.DRIFT)
    assert result.message == (
        f"2 changes in the saved plan {saved}: local_file.banner: replace; local_file.motd: create ({GONE}); {TAIL}"
    )


def read_saved(path: Path) -> CheckResult:
    return attempt(CHECK, WHERE, lambda: judge(CHECK, WHERE, read_plan_json(str(path))))


def test_a_saved_plan_that_is_not_a_plan_is_an_error(infra: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.json"  # `plan -json`: a log of events, one object per line
    events.write_text(tb.tofu(infra, "plan", "-json", "-input=false").stdout)
    state = tmp_path / "state.json"
    state.write_text(tb.tofu(infra, "show", "-json").stdout)
    missing = tmp_path / "missing.json"
    found = {p.name: (r.verdict, r.message) for p in (events, state, missing) for r in [read_saved(p)]}
    assert found["events.json"][0] is Verdict.ERROR
    assert found["events.json"][1].startswith(
        f"saved plan {events} is not JSON (one JSON object per line: that is `plan -json`'s log): Extra data at line 2"
    )
    assert found["state.json"] == (
        Verdict.ERROR,
        f"saved plan {state} is not a plan (it has no planned_values: a state's JSON?); write it from a plan file",
    )
    assert found["missing.json"] == (
        Verdict.ERROR,
        f"saved plan {missing} does not exist: did the pipeline save it (`tofu show -json PLANFILE > {missing}`)?",
    )


# --- the plan's JSON, judged ----------------------------------------------------------------------------------------


def plan_document(*changes: dict, drift: tuple[dict, ...] = (), outputs: dict | None = None, **more: object) -> dict:
    return {
        "format_version": "1.2",
        "planned_values": {},
        "resource_changes": list(changes),
        "resource_drift": list(drift),
        "output_changes": outputs or {},
        **more,
    }


def rc(address: str, *actions: str, mode: str = "managed", **change: object) -> dict:
    return {"address": address, "mode": mode, "change": {"actions": list(actions), **change}}


def test_replace_import_move_and_data_reads_are_worded() -> None:
    document = plan_document(
        rc("a.x", "create", "delete"),
        rc("a.y", "delete", "create"),
        rc("a.z", "no-op", importing={"id": "abc"}),
        {**rc("a.new", "no-op"), "previous_address": "a.old"},
        rc("data.d.x", "read", mode="data"),
        rc("a.same", "no-op"),
        rc("a.gone", "forget"),
        drift=(rc("a.same", "update"), rc("a.y", "delete")),
        outputs={"o": {"actions": ["update"]}, "p": {"actions": ["no-op"]}},
    )
    managed, changes = changes_of(document, "plan")
    assert managed == 6
    assert [c.line() for c in changes] == [
        "a.x: replace",
        f"a.y: replace ({GONE})",
        "a.z: import",
        "a.new: move from a.old",
        "a.gone: forget",
        "a.same: changed outside OpenTofu",
        "output.o: update",
    ]


def test_a_failed_plan_and_a_stranger_document_cannot_be_judged() -> None:
    with pytest.raises(CannotPlan, match=r"^plan is from a plan that failed \(errored: true\)"):
        changes_of(plan_document(errored=True), "plan")
    with pytest.raises(CannotPlan, match=r"^plan is not the JSON of a plan \(no format_version\)"):
        changes_of({"resource_changes": []}, "plan")
    with pytest.raises(CannotPlan, match=r"^plan: a.x has no change.actions$"):
        changes_of(plan_document({"address": "a.x", "change": {}}), "plan")


def test_many_changes_name_the_first_eight_and_count_the_rest() -> None:
    changes = changes_of(plan_document(*[rc(f"a.r{i}", "update") for i in range(10)]), "p")[1]
    result = judge(CHECK, WHERE, Plan("plan of /x", 10, changes))
    named = "; ".join(f"a.r{i}: update" for i in range(8))
    assert result.message == f"10 changes in the plan of /x: {named}; and 2 more (see the plan summary); {TAIL}"
    assert len(summary(result)["changes"]) == 10


# --- the binary: missing, hanging, talking about secrets ------------------------------------------------------------


def fake_tofu(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-tofu"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_a_tofu_that_hangs_is_stopped_on_its_timeout_with_what_it_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = fake_tofu(tmp_path, f"sleep 300 &\necho $! > {pids}\nwait\n")
    workdir = tb.make_workdir(tmp_path / "infra", {})
    deadline = Deadline.after(60, calls=CallTimeouts(terraform=1.0))
    started = time.monotonic()
    result = run_check(workdir, {**os.environ, "DV_TOFU": str(script)}, deadline)
    assert time.monotonic() - started < 10
    assert (result.verdict, result.message) == (
        Verdict.ERROR,
        f"cannot plan {workdir}: `fake-{INIT}` was still running after 1s (defaults.timeouts.terraform) and was "
        "stopped with every process it started: look at what it waits for (a backend, a provider's API, a lock), or "
        "raise defaults.timeouts.terraform",
    )
    assert not alive(int(pids.read_text()))  # the provider-like child went with it


def alive(pid: int) -> bool:
    """Running, not a zombie (a container's init may be slow to reap, or never reap, an orphan killed with a group)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_the_run_budget_caps_a_hanging_tofu(tmp_path: Path) -> None:
    script = fake_tofu(tmp_path, "exec sleep 300\n")
    workdir = tb.make_workdir(tmp_path / "infra", {})
    result = run_check(workdir, {**os.environ, "DV_TOFU": str(script)}, Deadline.after(1.5, label="time budget"))
    assert result.verdict is Verdict.ERROR
    assert result.message.startswith(f"cannot plan {workdir}: `fake-{INIT}` was still running after 1s (the ")
    assert result.message.endswith(
        "(the time budget's remainder) and was stopped with every process it started: look at what it waits for (a "
        "backend, a provider's API, a lock), or raise the environment's budget"
    )


def test_secrets_in_the_environment_are_blanked_from_the_tools_words(tmp_path: Path) -> None:
    script = fake_tofu(
        tmp_path, 'echo "Error: authenticating with client secret $ARM_CLIENT_SECRET failed" >&2\nexit 1\n'
    )
    workdir = tb.make_workdir(tmp_path / "infra", {})
    env = {**os.environ, "DV_TOFU": str(script), "ARM_CLIENT_SECRET": "s3cr3t-planted-value"}
    result = run_check(workdir, env)
    assert (result.verdict, result.message) == (
        Verdict.ERROR,
        f"cannot plan {workdir}: `fake-{INIT}` exited 1: Error: authenticating with client secret "
        "<ARM_CLIENT_SECRET> failed; init failed: check the backend, the provider sources and the CLI config "
        "(TF_CLI_CONFIG_FILE)",
    )


def test_no_binary_is_an_error_saying_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(CannotPlan, match=r"^no OpenTofu binary to plan with: install OpenTofu \(tofu on PATH\)"):
        tofu_command({"PATH": str(tmp_path)})
    fake_tofu(tmp_path, "exit 0\n").rename(tmp_path / "terraform")
    assert tofu_command({"PATH": str(tmp_path)}) == [shutil.which("terraform", path=str(tmp_path))]
    workdir = tb.make_workdir(tmp_path / "infra", {})
    result = run_check(workdir, {**os.environ, "DV_TOFU": str(tmp_path / "no-such-tofu")})
    assert (result.verdict, result.message) == (
        Verdict.ERROR,
        f"cannot plan {workdir}: no-such-{INIT}: cannot run {tmp_path / 'no-such-tofu'}: No such file or "
        "directory; install OpenTofu or fix DV_TOFU",
    )


def test_a_missing_build_fails_with_the_build_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DV_CACHE_DIR", str(tmp_path))
    version = tb.versions()["TOFU_VERSION"]
    with pytest.raises(tb.TofuMissing) as raised:
        tb.tofu_binary()
    assert str(raised.value) == (
        f"the OpenTofu binary is not built at {tmp_path}/tofu/{version}/bin/tofu: run testbed/tofu/build.sh "
        "(or make tools)"
    )


def test_the_build_is_cached_and_names_its_paths(built: tuple[Path, Path]) -> None:
    started = time.monotonic()
    done = subprocess.run([str(ROOT / "testbed/tofu/build.sh")], capture_output=True, text=True, timeout=60, check=True)
    assert time.monotonic() - started < 5, done.stderr  # warm: only the version probes
    assert done.stdout.splitlines() == [
        f"DV_TOFU={built[0]}",
        f"TF_CLI_CONFIG_FILE={built[1]}",
        f"DV_TOFU_MIRROR={built[1].parent / 'mirror'}",
    ]
    assert "direct" not in built[1].read_text()  # the mirror only: init is offline


# --- end to end: the built-in scenario with an environment file -----------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, built: tuple[Path, Path]) -> Path:
    """A team's repository: pyproject.toml, an environment naming four terraform components."""
    infra = tmp_path / "infra"
    green = tb.make_workdir(infra / "green", {"motd": "hello\n"})
    drifted = tb.make_workdir(infra / "drifted", {"motd": "hello\n"})
    broken = tb.make_workdir(infra / "broken", {"motd": "hello\n"})
    for workdir in (green, drifted, broken):
        tb.apply(workdir)
    saved = tb.saved_plan(green, infra / "green-plan.json")
    (drifted / "motd.txt").write_text("changed by hand\n")
    (broken / "null.tf").write_text(NULL)
    (broken / ".terraform.lock.hcl").unlink()
    workdir = tmp_path / "repo"
    (workdir / "features").mkdir(parents=True)
    (workdir / "environments").mkdir()
    shutil.copy(ROOT / "pyproject.toml", workdir)
    (workdir / "environments" / "local.yaml").write_text(
        "name: local\nbudget: 2m\ncomponents:\n"
        "  - {name: network, kind: terraform, working_dir: ../infra/green}\n"
        "  - {name: files, kind: terraform, working_dir: ../infra/drifted}\n"
        "  - {name: broken, kind: terraform, working_dir: ../infra/broken}\n"
        f"  - {{name: pipeline, kind: terraform, plan_json: {saved}}}\n"
    )
    return workdir


def test_the_drift_scenario_runs_for_each_terraform_component(repo: Path, built: tuple[Path, Path]) -> None:
    env = {**os.environ, "DV_TOFU": str(built[0]), "TF_CLI_CONFIG_FILE": str(built[1])}
    for phase in ("predeploy", "postdeploy"):
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "features", "-m", f"{phase} and drift", "-p", "no:cacheprovider"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
        document = json.loads((repo / "reports" / "verdict.json").read_text())
        rows = {t["component"]: (t["check"], t["outcome"], t["category"]) for t in document["tests"]}
        assert rows == {
            "network": (CHECK, "pass", ""),
            "pipeline": (CHECK, "pass", ""),
            "files": (CHECK, "fail", "Infrastructure drift"),
            "broken": (CHECK, "error", "Could not decide"),
        }
        messages = {t["component"]: t["message"] for t in document["tests"]}
        infra = repo.parent / "infra"
        assert messages["files"] == (
            f"Terraform:files: 1 change in the plan of {infra / 'drifted'}: local_file.motd: create ({GONE}); {TAIL}"
        )
        assert messages["broken"].startswith(f"Terraform:broken: cannot plan {infra / 'broken'}: `tofu init ")
