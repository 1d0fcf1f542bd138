"""Binds every feature file in this folder; each scenario runs once per component it applies to (suite.plugin)."""

import pytest
from pytest_bdd import scenarios

# Every scenario requests the component (or cluster) it runs for, so pytest_generate_tests can parametrize it
# (a scenario test function does not otherwise name the fixtures its steps use).
pytestmark = pytest.mark.usefixtures("target_name")

scenarios(".")
