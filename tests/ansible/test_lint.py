"""ansible-lint (production profile, .ansible-lint) passes on roles, playbooks and inventories."""

from __future__ import annotations

import subprocess

from tests.ansible.conftest import REPO, ansible_env, tool


def test_ansible_lint_production_profile_passes() -> None:
    proc = subprocess.run(
        [tool("ansible-lint"), "roles/", "playbooks/", "inventories/"],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Profile 'production' was required, and it passed" in output, output
