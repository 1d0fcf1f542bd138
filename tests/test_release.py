"""Release manifests and --expect: what should be running, never guessed."""

from __future__ import annotations

import pytest

from deploy_verify.config import ConfigError
from deploy_verify.release import load_release

NAMES = ["payments-api", "checkout-web"]


def write(tmp_path, text):
    path = tmp_path / "release.yaml"
    path.write_text(text)
    return path


def test_manifest_with_full_and_shorthand_entries(tmp_path):
    path = write(
        tmp_path,
        "release: r1\ncomponents:\n  payments-api: {version: 1.4.2, image: acr/p:1.4.2}\n  checkout-web: 3.0.0\n",
    )
    manifest = load_release(path, [], NAMES)
    assert manifest.release == "r1"
    assert manifest.components["payments-api"].image == "acr/p:1.4.2"
    assert manifest.components["checkout-web"].version == "3.0.0"


def test_expect_overrides_the_manifest_version_and_keeps_the_image(tmp_path):
    path = write(tmp_path, "components:\n  payments-api: {version: 1.4.2, image: acr/p:1.4.2}\n")
    manifest = load_release(path, ["payments-api=1.4.3"], NAMES)
    assert manifest.components["payments-api"].version == "1.4.3"
    assert manifest.components["payments-api"].image == "acr/p:1.4.2"


def test_expect_without_a_manifest():
    assert load_release(None, ["checkout-web=3.1.0"], NAMES).components["checkout-web"].version == "3.1.0"


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("payments-api", "--expect 'payments-api': expected COMPONENT=VERSION, e.g. --expect payments-api=1.4.2"),
        ("payments-api=", "--expect 'payments-api=': expected COMPONENT=VERSION, e.g. --expect payments-api=1.4.2"),
        (
            "payment-api=1.0",
            "--expect 'payment-api=1.0': no component 'payment-api' in this environment; known: "
            "checkout-web, payments-api",
        ),
    ],
)
def test_bad_expect_is_refused_with_a_message(expect, message):
    with pytest.raises(ConfigError) as caught:
        load_release(None, [expect], NAMES)
    assert str(caught.value) == message


def test_bad_digest_in_manifest_names_file_and_line(tmp_path):
    path = write(tmp_path, "components:\n  payments-api:\n    digest: sha256:abc\n")
    with pytest.raises(ConfigError) as caught:
        load_release(path, [], NAMES)
    assert str(caught.value) == (
        f"{path}:3: components.payments-api.digest: string should match pattern '^sha256:[0-9a-f]{{64}}$' "
        "(got 'sha256:abc')"
    )


def test_unknown_key_in_manifest(tmp_path):
    path = write(tmp_path, "components:\n  payments-api: {verison: 1.0}\n")
    with pytest.raises(ConfigError) as caught:
        load_release(path, [], NAMES)
    assert str(caught.value) == (
        f"{path}:2: components.payments-api.verison: unknown key; allowed keys: chart, containers, digest, image, revisions, version"
    )


def test_missing_manifest_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_release(tmp_path / "nope.yaml", [], NAMES)
    assert str(caught.value) == f"--release: {tmp_path / 'nope.yaml'}: cannot read: No such file or directory"


def test_a_manifest_naming_a_component_the_environment_lacks_is_refused(tmp_path):
    """A typo would leave the real component without an expectation, and its checks asking for a file already given."""
    path = write(tmp_path, "components:\n  payments-api: 1.0\n  paymnets-api: 1.1\n  zz: 2.0\n")
    with pytest.raises(ConfigError) as caught:
        load_release(path, [], NAMES)
    known = ", ".join(sorted(NAMES))
    assert caught.value.problems == [
        f"{path}:3: components.paymnets-api: no component 'paymnets-api' in this environment; known: {known}",
        f"{path}:4: components.zz: no component 'zz' in this environment; known: {known}",
    ]


def test_a_manifest_that_is_not_utf8_is_refused_with_its_line(tmp_path):
    path = tmp_path / "release.yaml"
    path.write_bytes(b"release: r1\ncomponents:\n  payments-api: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_release(path, [], NAMES)
    assert str(caught.value) == f"--release: {path}:3: not UTF-8: byte 0xe9 at column 20; save the file as UTF-8"
