"""Collect the resources the Pulumi program declares, through Pulumi's own mock interface.

The same `__main__.py` that `pulumi up` runs is executed here; every resource registration reaches
`Recorder.new_resource` with its type token and resolved inputs (camelCase, as the provider sees
them). Registrations arrive only once their inputs and `depends_on` are resolved, so the recorded
order is a valid creation order.
"""

from __future__ import annotations

import asyncio
import json
import os
import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

REPO = Path(__file__).resolve().parents[2]
PROJECT = "pbx"

# How the Pulumi SDK marks a secret value on the wire.
_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # noqa: S105 - a marker, not a secret


@dataclass(frozen=True)
class Declared:
    type: str  # e.g. docker:index/container:Container
    name: str  # logical name
    inputs: dict[str, Any]


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.declared: list[Declared] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = reveal(args.inputs)
        if args.custom:
            self.declared.append(Declared(args.typ, args.name, inputs))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


def reveal(value: Any) -> Any:
    """Unwrap secret markers: the realiser hands the values to Docker, as the provider would."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) is not None and "value" in value:
            return reveal(value["value"])
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def stack_config(stack: str, secrets: dict[str, Any] | None = None) -> dict[str, str]:
    """`Pulumi.<stack>.yaml` plus secrets, in the form the SDK reads from PULUMI_CONFIG (an
    object as JSON, as the CLI passes it)."""
    raw = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    raw |= {f"{PROJECT}:{k}": v for k, v in (secrets or {}).items()}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def declare(stack: str, config: dict[str, str], recorder: Recorder | None = None) -> list[Declared]:
    """Run the Pulumi program for `stack` with `config`; return what it declares, in order."""
    os.environ["PULUMI_CONFIG"] = json.dumps(config)
    recorder = recorder or Recorder()
    # The SDK expects the thread to have an event loop; asyncio.run() elsewhere in the same process
    # (a test client, a WebSocket test) leaves the main thread with none.
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(recorder, project=PROJECT, stack=stack, preview=False)
    cwd = Path.cwd()
    os.chdir(REPO)  # build contexts are relative to the project, as under `pulumi up`
    try:
        program = str(REPO / "__main__.py")
        run = pulumi.runtime.test(lambda: runpy.run_path(program, run_name="__main__"))  # type: ignore[no-untyped-call]
        run()
    finally:
        os.chdir(cwd)
    return recorder.declared
