"""Real helm (v3 and v4, from the cached PyPI-wheel binaries) against the testbed's clusters.

helm = Helm.for_testbed("helm3", "dv-b")
helm("install", "catalog", str(chart), "-n", "catalog", "--create-namespace")
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from testbed.kube import ROOT_STATE, kube_bin

CHART = Path(__file__).resolve().parent / "charts" / "catalog"
# The chart that passes every manifest policy rule (checks.policy), and the local environment's values for it.
REVIEWS = CHART.parent / "reviews"
REVIEWS_VALUES = CHART.parent.parent.parent / "environments" / "values" / "reviews.local.yaml"
BINARIES = ("helm", "helm3")  # helm v4 and helm v3


@dataclass(frozen=True)
class Helm:
    binary: Path
    kubeconfig: Path
    context: str

    @classmethod
    def for_testbed(cls, binary: str, cluster: str, state: Path = ROOT_STATE) -> Helm:
        return cls(kube_bin(binary), state / "kubeconfig.yaml", f"kwok-{cluster}")

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True, check=check, timeout=timeout)

    def command(self, *args: str) -> list[str]:
        return [str(self.binary), "--kubeconfig", str(self.kubeconfig), "--kube-context", self.context, *args]


def chart_copy(folder: Path, version: str, app_version: str) -> Path:
    """The testbed chart with another version and appVersion (what an upgrade ships)."""
    target = folder / f"catalog-{version}"
    shutil.copytree(CHART, target, dirs_exist_ok=True)
    text = (target / "Chart.yaml").read_text()
    lines = [f"version: {version}" if line.startswith("version:") else line for line in text.splitlines()]
    lines = [f'appVersion: "{app_version}"' if line.startswith("appVersion:") else line for line in lines]
    (target / "Chart.yaml").write_text("\n".join(lines) + "\n")
    return target
