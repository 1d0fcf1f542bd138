"""Infrastructure drift: what runs matches the infrastructure code, as OpenTofu (or Terraform) plans it.

    plan = plan_working_dir(tofu_command(), PlanRequest("/repo/infra", var_files=("prod.tfvars",)), deadline)
    plan = read_plan_json("/pipeline/plan.json")   # what `tofu show -json PLANFILE` wrote
    result = judge(CHECK, "Terraform:infra", plan)

A plan is made the way a deploy makes it (init, optional workspace, plan with refresh), so an object changed by hand
(a file edited, a setting changed in the Azure portal) is seen on refresh, and code not yet applied is seen as the
change apply would make. Any change is drift: a FAIL naming each address and action. A plan that cannot be made
(init failed, the state is locked, credentials refused, no binary, a timeout) is an ERROR with the tool's own last
words: the suite could not find out.

Side effects are kept out of the working directory: `.terraform` goes to a temporary TF_DATA_DIR (with the plan file),
an existing `.terraform.lock.hcl` is used read-only (`-lockfile=readonly`: the drift check verifies with the
providers the team pinned, it never re-pins them), and a lock file that init had to create is removed again. The
working directory itself is not copied: `path.module`, relative module sources and a local backend's state must be
the real ones, or the plan would describe a copy.

Messages and evidence name addresses and actions only, never attribute values (they can be secrets), and any value
of a secret-looking environment variable is blanked from the tool's words before they are shown.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.result import Category, CheckResult, Evidence, Verdict
from deploy_verify.checks.runner import Undecidable
from deploy_verify.checks.transports.process import Done, ProcessMissing, ProcessTimeout, run_bounded

CHECK = "infrastructure_no_drift"
LOCK_FILE = ".terraform.lock.hcl"
SHOWN = 8  # changes named in the message; the evidence lists every one
# What refresh says of an object the provider no longer finds as recorded: deleted, or (local_file, a content hash
# as its id) changed so that it is no longer the same object.
GONE = "not found on refresh: deleted or replaced outside OpenTofu"
# Environment variables whose values must never reach a message: credentials for providers and backends.
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|ACCESS_KEY|CLIENT_KEY|SAS|CONNECTION_STRING|CREDENTIAL")
# Flags from these would change what the check runs behind its back (`-refresh=false`, `-target=...`).
DROPPED_ENV = re.compile(r"^TF_CLI_ARGS(_.*)?$")


class CannotPlan(Undecidable):
    """The plan could not be made or read: the suite cannot tell whether there is drift (ERROR)."""


@dataclass(frozen=True)
class PlanRequest:
    working_dir: str
    var_files: tuple[str, ...] = ()
    workspace: str | None = None


@dataclass(frozen=True)
class Change:
    """One thing apply would do, or one object changed outside the tool: an address and a word for it."""

    address: str
    action: str  # create, update, delete, replace, forget, import, move, changed outside OpenTofu, ...
    reason: str = ""  # the plan's action_reason, when it gives one

    def line(self) -> str:
        return f"{self.address}: {self.action}"


@dataclass(frozen=True)
class Plan:
    """What a plan says, without values: its managed resources and every change."""

    source: str  # "plan of /repo/infra" or "saved plan /pipeline/plan.json"
    resources: int
    changes: tuple[Change, ...] = ()
    commands: tuple[str, ...] = field(default=())

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "commands": list(self.commands),
            "managed_resources": self.resources,
            "changes": [{"address": c.address, "action": c.action, "reason": c.reason} for c in self.changes],
        }


def tofu_command(env: Mapping[str, str] | None = None) -> list[str]:
    """$DV_TOFU, else `tofu` on PATH, else `terraform` on PATH."""
    variables = os.environ if env is None else env
    path = variables.get("PATH")
    chosen = variables.get("DV_TOFU") or shutil.which("tofu", path=path) or shutil.which("terraform", path=path)
    if not chosen:
        raise CannotPlan(
            "no OpenTofu binary to plan with: install OpenTofu (tofu on PATH), or set DV_TOFU to its path "
            "(this repository builds one with testbed/tofu/build.sh)"
        )
    return [chosen]


# ---------------------------------------------------------------------------------------------------------------
# Judging a plan


def judge(check: str, where: str, plan: Plan) -> CheckResult:
    """No change: PASS. Any change: FAIL naming each address and action, filed under infrastructure drift."""
    evidence = (Evidence.as_json("plan summary", plan.summary()),)
    if not plan.changes:
        noun = "resource matches" if plan.resources == 1 else "resources match"
        return CheckResult(check, where, Verdict.PASS, f"no drift: {plan.resources} {noun}", evidence)
    named = "; ".join(c.line() for c in plan.changes[:SHOWN])
    more = f"; and {len(plan.changes) - SHOWN} more (see the plan summary)" if len(plan.changes) > SHOWN else ""
    count = len(plan.changes)
    message = (
        f"{count} {'change' if count == 1 else 'changes'} in the {plan.source}: {named}{more}; "
        "apply the code, or bring the code in line with what runs"
    )
    return CheckResult(check, where, Verdict.FAIL, message, evidence, Category.DRIFT)


def changes_of(document: Mapping[str, Any], what: str) -> tuple[int, tuple[Change, ...]]:
    """(managed resources, changes) from a plan's JSON (`show -json PLANFILE`), in the plan's order.

    An address that apply would change and that was also changed outside the tool is named once, with both."""
    if not isinstance(document, dict) or "format_version" not in document:
        raise CannotPlan(
            f"{what} is not the JSON of a plan (no format_version): write it with `tofu show -json PLANFILE`"
        )
    if "planned_values" not in document and "resource_changes" not in document:
        raise CannotPlan(f"{what} is not a plan (it has no planned_values: a state's JSON?); write it from a plan file")
    if document.get("errored"):
        raise CannotPlan(f"{what} is from a plan that failed (errored: true): its changes are incomplete")
    outside = _drift(_entries(document, "resource_drift", what), what)
    changes: list[Change] = []
    managed = 0
    for entry in _entries(document, "resource_changes", what):
        address, change = _address(entry, what), _change(entry, what)
        if entry.get("mode", "managed") == "managed":
            managed += 1
        action = _action(change, entry)
        if action is None:
            continue
        also = outside.pop(address, None)
        changes.append(Change(address, f"{action} ({also})" if also else action, str(entry.get("action_reason") or "")))
    changes += [Change(address, said) for address, said in outside.items()]  # changed outside, no change planned
    for name, output in sorted((document.get("output_changes") or {}).items()):
        action = _action(output if isinstance(output, dict) else {}, {})
        if action is not None:
            changes.append(Change(f"output.{name}", action))
    return managed, tuple(changes)


def _entries(document: Mapping[str, Any], key: str, what: str) -> list[dict[str, Any]]:
    entries = document.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CannotPlan(f"{what}: {key} is not a list of objects, as `show -json` writes it")
    return entries


def _address(entry: Mapping[str, Any], what: str) -> str:
    address = entry.get("address")
    if not isinstance(address, str) or not address:
        raise CannotPlan(f"{what}: an entry of the plan has no address")
    return address


def _change(entry: Mapping[str, Any], what: str) -> dict[str, Any]:
    change = entry.get("change")
    if not isinstance(change, dict) or not isinstance(change.get("actions"), list):
        raise CannotPlan(f"{what}: {entry.get('address')} has no change.actions")
    return change


def _action(change: Mapping[str, Any], entry: Mapping[str, Any]) -> str | None:
    """The word for what apply would do (None: nothing). Replace is either order of delete and create."""
    actions = [str(a) for a in change.get("actions") or []]
    words: list[str] = []
    if sorted(actions) == ["create", "delete"]:
        words.append("replace")
    elif actions and actions != ["no-op"] and actions != ["read"]:
        words.append(" and ".join(actions))
    if change.get("importing"):
        words.append("import")  # an import block not yet applied: the state is about to change
    previous = entry.get("previous_address")
    if previous and previous != entry.get("address"):
        words.append(f"move from {previous}")  # a moved block not yet applied
    return ", ".join(words) or None


def _drift(entries: list[dict[str, Any]], what: str) -> dict[str, str]:
    """address -> "changed outside OpenTofu" or GONE, from resource_drift."""
    found: dict[str, str] = {}
    for entry in entries:
        actions = _change(entry, what)["actions"]
        if actions in (["no-op"], ["read"]):
            continue
        found[_address(entry, what)] = GONE if actions == ["delete"] else "changed outside OpenTofu"
    return found


# ---------------------------------------------------------------------------------------------------------------
# A saved plan


def read_plan_json(path: str) -> Plan:
    """The JSON the pipeline saved with `tofu show -json PLANFILE` (not `plan -json`'s stream of events)."""
    what = f"saved plan {path}"
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise CannotPlan(
            f"{what} does not exist: did the pipeline save it (`tofu show -json PLANFILE > {path}`)?"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CannotPlan(f"{what} cannot be read: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (one JSON object per line: that is `plan -json`'s log)" if text.lstrip().startswith("{") else ""
        raise CannotPlan(
            f"{what} is not JSON{hint}: {exc.msg} at line {exc.lineno}; write it with `tofu show -json PLANFILE`"
        ) from None
    managed, changes = changes_of(document, what)
    return Plan(what, managed, changes)


# ---------------------------------------------------------------------------------------------------------------
# A working directory, planned here


def plan_working_dir(
    command: Sequence[str], request: PlanRequest, deadline: Deadline, env: Mapping[str, str] | None = None
) -> Plan:
    """init, workspace select, plan (refresh on) and show -json, each bounded by defaults.timeouts.terraform."""
    workdir = Path(request.working_dir).resolve()  # messages name /repo/infra, not /repo/envs/../infra
    if not workdir.is_dir():
        raise CannotPlan(f"working_dir {workdir} is not a directory: is the infrastructure code checked out there?")
    variables = dict(os.environ if env is None else env)
    with _isolated(workdir, variables, request.workspace) as (scratch, tool_env):
        plan_file = str(scratch / "drift.tfplan")
        ran: list[str] = []
        done: Done | None = None
        for args in _commands(request, plan_file, pinned=(workdir / LOCK_FILE).is_file()):
            shown = _shown(command, args, plan_file)
            ran.append(shown)
            done = _run([*command, *args], workdir, tool_env, deadline, shown)
            # plan -detailed-exitcode: 0 no change, 2 changes, 1 error
            if done.returncode not in ((0, 2) if args[0] == "plan" else (0,)):
                raise CannotPlan(_failed(workdir, args[0], shown, done, variables))
        assert done is not None  # show -json ran last
        what = f"plan of {workdir}"
        try:
            document = json.loads(done.stdout)
        except json.JSONDecodeError as exc:
            raise CannotPlan(f"{what}: `{ran[-1]}` did not print JSON ({exc.msg} at line {exc.lineno})") from None
        managed, changes = changes_of(document, what)
        return Plan(what, managed, changes, tuple(ran))


def _commands(request: PlanRequest, plan_file: str, pinned: bool) -> list[list[str]]:
    """What a deploy runs up to its plan, then `show -json` of that plan.

    -lock-timeout=0s: a state another run holds is an ERROR at once (its plan would describe a state being
    rewritten), not a wait that eats the budget; the plan takes the lock only for its refresh, and writes nothing."""
    init = ["init", "-input=false", "-no-color", "-lock-timeout=0s", *(["-lockfile=readonly"] if pinned else [])]
    select = [["workspace", "select", "-no-color", request.workspace]] if request.workspace else []
    plan = ["plan", "-input=false", "-no-color", "-detailed-exitcode", "-lock-timeout=0s", f"-out={plan_file}"]
    plan += [f"-var-file={f}" for f in request.var_files]
    return [init, *select, plan, ["show", "-json", "-no-color", plan_file]]


@contextmanager
def _isolated(workdir: Path, variables: dict[str, str], workspace: str | None) -> Iterator[tuple[Path, dict[str, str]]]:
    """A scratch TF_DATA_DIR (with the plan file: it holds values in clear), removed afterwards with any lock file
    init had to create; the environment the tool runs with."""
    had_lock_file = (workdir / LOCK_FILE).exists()
    with tempfile.TemporaryDirectory(prefix="dv-drift-") as scratch:
        tool_env = {k: v for k, v in variables.items() if not DROPPED_ENV.match(k)}
        if workspace:
            tool_env.pop("TF_WORKSPACE", None)  # it would override, and refuse, the component's `workspace select`
        tool_env.update(
            TF_DATA_DIR=str(Path(scratch) / "data"),
            TF_IN_AUTOMATION="1",  # no "run tofu apply next" advice in the output
            TF_INPUT="0",  # never wait for an answer on a terminal nobody watches
            CHECKPOINT_DISABLE="1",  # no version check call home
        )
        try:
            yield Path(scratch), tool_env
        finally:
            if not had_lock_file:
                (workdir / LOCK_FILE).unlink(missing_ok=True)


def _run(command: list[str], workdir: Path, tool_env: dict[str, str], deadline: Deadline, shown: str) -> Done:
    wanted = deadline.calls.terraform
    timeout = deadline.timeout(wanted)
    try:
        return run_bounded(command, timeout, shown, cwd=str(workdir), env=tool_env)
    except ProcessMissing as exc:
        raise CannotPlan(f"cannot plan {workdir}: {exc}; install OpenTofu or fix DV_TOFU") from exc
    except ProcessTimeout:
        capped = timeout < wanted
        bound = f"the {deadline.label}'s remainder" if capped else "defaults.timeouts.terraform"
        more = "the environment's budget" if capped else "defaults.timeouts.terraform"
        raise CannotPlan(
            f"cannot plan {workdir}: `{shown}` was still running after {timeout:.0f}s ({bound}) and was stopped "
            "with every process it started: look at what it waits for (a backend, a provider's API, a lock), or "
            f"raise {more}"
        ) from None


def _shown(command: Sequence[str], args: list[str], plan_file: str) -> str:
    """The command as a person would type it: the binary's name, the temporary plan file as PLANFILE."""
    words = [Path(command[0]).name, *command[1:], *args]
    return " ".join(w.replace(plan_file, "PLANFILE") for w in words)


def _failed(workdir: Path, subcommand: str, shown: str, done: Done, variables: Mapping[str, str]) -> str:
    """Why a command failed, in the tool's last words (secrets blanked), with what to do next."""
    said = blank_secrets(done.last_lines(), variables)
    text = done.stderr + done.stdout
    if "Error acquiring the state lock" in text:
        holder = _lock_holder(text)
        return (
            f"cannot plan {workdir}: the state is locked by another run{holder}: `{shown}` stopped; wait for that run "
            "to finish (or `tofu force-unlock ID` if it died), then verify again"
        )
    if "-lockfile=readonly" in shown and "Provider dependency changes detected" in text:
        hint = f"the providers the configuration needs differ from {LOCK_FILE}: run `tofu init`, commit the lock file"
    elif subcommand == "init":
        hint = "init failed: check the backend, the provider sources and the CLI config (TF_CLI_CONFIG_FILE)"
    else:
        hint = f"run `{shown}` in {workdir} to see the whole error"
    return f"cannot plan {workdir}: `{shown}` exited {done.returncode}: {said}; {hint}"


def _lock_holder(text: str) -> str:
    """The lock info tofu prints, as ` (ID x, held by who, for what, since when)`; empty when it prints none."""
    info = dict(re.findall(r"^\s*(ID|Who|Created|Operation):\s*(.+?)\s*$", text, re.MULTILINE))
    parts = [f"ID {info['ID']}"] if "ID" in info else []
    parts += [f"held by {info['Who']}"] if "Who" in info else []
    # `tofu console` and other commands outside an operation hold it as "OperationTypeInvalid": not worth saying.
    operation = info.get("Operation", "").removeprefix("OperationType")
    parts += [f"for {operation.lower()}"] if operation and operation != "Invalid" else []
    created = re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", info.get("Created", ""))
    parts += [f"since {created[0]} UTC"] if created else []
    return f" ({', '.join(parts)})" if parts else ""


def blank_secrets(text: str, variables: Mapping[str, str]) -> str:
    """`text` with the value of every secret-looking environment variable (and every TF_VAR_) replaced."""
    for name, value in variables.items():
        if len(value) >= 6 and (SECRET_NAME.search(name.upper()) or name.startswith("TF_VAR_")):
            text = text.replace(value, f"<{name}>")
    return text
