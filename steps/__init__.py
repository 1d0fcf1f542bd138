"""Thin pytest-bdd step definitions: parse the Gherkin, call one check, attach its evidence, assert."""
