"""Version inventory: which version of each component runs in each environment, with drift highlighted. Read-only.

    python -m deploy_verify.inventory integration staging prod --json reports/inventory.json --allure-results DIR

Prints a component x environment table (a `*` marks a component whose environments run different versions, `?` a
version that could not be read, `-` a component the environment does not have), writes the same as JSON, and adds it
to Allure results as a test named "Version inventory" with the table and JSON attached. An environment that cannot
be read makes its column `?` with the reason; the exit code is 0 when everything was read, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy_verify.checks.deadline import Deadline
from deploy_verify.checks.runner import Absent, Undecidable
from deploy_verify.checks.transports import TransportError
from deploy_verify.clients import AzureClients, KubeClients
from deploy_verify.config import ConfigError, Environment, load_environment
from deploy_verify.kinds import Clients, kind_of

NOT_VERSIONED = "not versioned"  # a kind whose running version is not read (endpoint, function app)
# Could not ask (transport), nothing there (absent), or nothing to judge by (undecidable): the cell says why.
UNREADABLE = (TransportError, Absent, Undecidable)


@dataclass
class Cell:
    version: str | None = None  # None: not readable (see problem) or not versioned
    image: str | None = None
    problem: str | None = None


@dataclass
class Inventory:
    environments: list[str]
    rows: dict[str, dict[str, Cell]] = field(default_factory=dict)  # component -> environment -> cell
    problems: dict[str, str] = field(default_factory=dict)  # environment -> why it could not be read at all

    def drifted(self, component: str) -> bool:
        versions = {c.version for c in self.rows[component].values() if c.version is not None}
        return len(versions) > 1

    @property
    def complete(self) -> bool:
        return not self.problems and all(
            c.problem in (None, NOT_VERSIONED) for row in self.rows.values() for c in row.values()
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "environments": self.environments,
            "problems": self.problems,
            "components": {
                name: {
                    "drift": self.drifted(name),
                    "versions": {env: vars(cell) for env, cell in sorted(row.items())},
                }
                for name, row in sorted(self.rows.items())
            },
        }


def collect(names: list[str], env_dir: Path, budget: float = 120.0) -> Inventory:
    """Read every component of every named environment, within one time budget."""
    deadline = Deadline.after(budget, f"inventory budget of {budget:g}s")
    inventory = Inventory(names)
    for name in names:
        try:
            env = load_environment(name, env_dir)
        except ConfigError as exc:
            inventory.problems[name] = str(exc)
            continue
        _read_environment(inventory, env, env.budget_deadline(within=deadline))
    return inventory


def _read_environment(inventory: Inventory, env: Environment, deadline: Deadline) -> None:
    kube, azure = KubeClients(env), AzureClients(env, deadline)
    try:
        for component in env.components:
            try:
                found = kind_of(component).running_version(component, Clients(kube, azure), deadline)
            except UNREADABLE as exc:
                cell = Cell(problem=str(exc))
            else:
                cell = Cell(found.get("version"), found.get("image")) if found else Cell(problem=NOT_VERSIONED)
            inventory.rows.setdefault(component.name, {})[env.name] = cell
    finally:
        kube.close()
        azure.close()


def render_table(inventory: Inventory) -> str:
    header = ["component", *inventory.environments]
    lines = [header]
    for name in sorted(inventory.rows):
        row = inventory.rows[name]
        cells = [_show(row.get(env)) for env in inventory.environments]
        lines.append([("* " if inventory.drifted(name) else "  ") + name, *cells])
    lines[0][0] = "  " + lines[0][0]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines]
    drift = [name for name in sorted(inventory.rows) if inventory.drifted(name)]
    text.append(f"drift (*): {', '.join(drift)}" if drift else "no drift: every component runs one version")
    text += [f"{env}: not read: {problem}" for env, problem in inventory.problems.items()]
    unreadable = [
        f"{name} in {env}: {cell.problem}"
        for name, row in sorted(inventory.rows.items())
        for env, cell in sorted(row.items())
        if cell.problem and cell.problem != NOT_VERSIONED
    ]
    text += [f"? {line}" for line in unreadable]
    return "\n".join(text)


def _show(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    if cell.version is not None:
        return cell.version
    return "n/a" if cell.problem == NOT_VERSIONED else "?"


def write_allure(inventory: Inventory, table: str, results: Path) -> None:
    """One Allure test result, "Version inventory", with the table and the JSON attached."""
    results.mkdir(parents=True, exist_ok=True)
    attachments = []
    for name, content, kind, ext in (
        ("version inventory", table, "text/plain", "txt"),
        ("version inventory (JSON)", json.dumps(inventory.as_dict(), indent=2), "application/json", "json"),
    ):
        source = f"{uuid.uuid4()}-attachment.{ext}"
        (results / source).write_text(content, encoding="utf-8")
        attachments.append({"name": name, "source": source, "type": kind})
    now = int(time.time() * 1000)
    drift = sorted(name for name in inventory.rows if inventory.drifted(name))
    result = {
        "uuid": str(uuid.uuid4()),
        "historyId": "deploy-verify-version-inventory",
        "name": "Version inventory",
        "fullName": "inventory: " + ", ".join(inventory.environments),
        "status": "passed" if inventory.complete else "broken",
        "statusDetails": {"message": f"drift: {', '.join(drift)}" if drift else "no drift"},
        "start": now,
        "stop": now,
        "attachments": attachments,
        "labels": [{"name": "feature", "value": "Version inventory"}, {"name": "suite", "value": "inventory"}],
    }
    (results / f"{result['uuid']}-result.json").write_text(json.dumps(result), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy_verify.inventory", description=__doc__.splitlines()[0])
    parser.add_argument("environments", nargs="+", help="environment names (environments/<name>.yaml)")
    parser.add_argument("--env-dir", type=Path, default=Path(__file__).resolve().parent.parent / "environments")
    parser.add_argument("--json", type=Path, help="write the inventory as JSON here")
    parser.add_argument("--allure-results", type=Path, help="add the inventory to these Allure results")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds for all reads together (default 120)")
    args = parser.parse_args(argv)
    inventory = collect(args.environments, args.env_dir, args.budget)
    table = render_table(inventory)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(inventory.as_dict(), indent=2) + "\n", encoding="utf-8")
    if args.allure_results:
        write_allure(inventory, table, args.allure_results)
    return 0 if inventory.complete else 1


if __name__ == "__main__":
    sys.exit(main())
