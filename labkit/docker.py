"""The Docker CLI, bounded: commands on the lab's containers and the clients' containers."""

from __future__ import annotations

import subprocess

from .wait import wait_for


def docker(
    *args: str, timeout: float = 60, check: bool = False, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`docker <args>` (`input` on its stdin); a timeout, or a failure with `check`, is an
    AssertionError."""
    try:
        result = subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"docker {' '.join(args)} timed out after {timeout}s") from e
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def shell(
    container: str, script: str, timeout: float = 60, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """`sh -c script` inside a running container."""
    return docker("exec", container, "sh", "-c", script, timeout=timeout, check=check)


def container_state(name: str) -> str:
    """ "running healthy", "exited ...", ... or "missing"."""
    r = docker("inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}", name)
    return r.stdout.strip() if r.returncode == 0 else "missing"


def running(name: str) -> bool:
    return docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"


def wait_healthy(names: list[str], timeout: float = 90) -> None:
    wait_for(
        lambda: all(container_state(n) == "running healthy" for n in names),
        timeout,
        1,
        f"healthy {names}",
    )


def remove(*names: str) -> None:
    """Remove containers, whether they exist or not."""
    if names:
        docker("rm", "-f", *names)
