"""Apply declared docker resources to the local Docker Engine, as the docker provider would.

Idempotent: every object carries the label `pbx.spec` (a hash of its declared inputs plus, for
containers, the image id). An object whose hash matches is left alone, so a second `make lab`
changes nothing; a changed declaration or a rebuilt image replaces exactly that container.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import tarfile
import time
from collections.abc import Callable, Iterable
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from .declared import REPO, Declared

NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/image:Image"
CONTAINER = "docker:index/container:Container"
PROVIDER = "pulumi:providers:docker"

PLATFORM_LABEL = "pbx.platform"
SPEC_LABEL = "pbx.spec"

Log = Callable[[str], None]


def _say(line: str) -> None:
    print(line, flush=True)


def spec_hash(inputs: dict[str, Any], extra: str = "") -> str:
    blob = json.dumps(inputs, sort_keys=True, default=str) + extra
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _labels(inputs: dict[str, Any]) -> dict[str, str]:
    return {item["label"]: item["value"] for item in inputs.get("labels", [])}


_DURATION = re.compile(r"^(\d+)(ms|s|m|h)$")
_NS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def _nanoseconds(duration: str) -> int:
    match = _DURATION.match(duration)
    if not match:
        raise ValueError(f"unsupported duration {duration!r}")
    return int(match.group(1)) * _NS[match.group(2)]


DATA_FINGERPRINT = "pbx.data-fingerprint"


class StaleData(RuntimeError):
    """A data volume was initialised with other secrets than this checkout's."""


class Realiser:
    def __init__(
        self,
        client: docker.DockerClient | None = None,
        log: Log = _say,
        data_fingerprint: str = "",
    ) -> None:
        self.client = client or docker.from_env(timeout=300)
        self.log = log
        self.image_ids: dict[str, str] = {}
        # Names the secrets a data volume was initialised with (a database keeps the passwords
        # of its first start): reusing it with other secrets would fail later, and obscurely.
        self.data_fingerprint = data_fingerprint

    def apply(self, declared: Iterable[Declared]) -> list[str]:
        """Create or update everything declared; return the container names."""
        containers = []
        handlers = {
            NETWORK: self._network,
            VOLUME: self._volume,
            IMAGE: self._image,
            CONTAINER: self._container,
        }
        for item in declared:
            if item.type == PROVIDER:
                continue
            handler = handlers.get(item.type)
            if handler is None:
                raise RuntimeError(f"the lab cannot realise {item.type} ({item.name})")
            handler(item)
            if item.type == CONTAINER:
                containers.append(item.inputs["name"])
        self._prune_superseded_images()
        return containers

    def _prune_superseded_images(self) -> None:
        """Drop our images that a rebuild untagged and no container uses any more: each lab
        rebuild would otherwise leave ~0.5 GB behind."""
        pruned = self.client.images.prune(filters={"dangling": True, "label": PLATFORM_LABEL})
        gone = pruned.get("ImagesDeleted") or []
        if gone:
            mb = (pruned.get("SpaceReclaimed") or 0) / 1e6
            self.log(f"  images    pruned {len(gone)} superseded layers ({mb:.0f} MB)")

    # --- networks and volumes ---------------------------------------------------------------

    def _network(self, item: Declared) -> None:
        inputs = item.inputs
        name = inputs["name"]
        labels = _labels(inputs) | {SPEC_LABEL: spec_hash(inputs)}
        try:
            existing = self.client.networks.get(name)
        except docker.errors.NotFound:
            existing = None
        if existing is not None:
            if existing.attrs["Labels"].get(SPEC_LABEL) == labels[SPEC_LABEL]:
                self.log(f"  network   {name}: unchanged")
                return
            self._remove_network(existing)
        pools = [
            docker.types.IPAMPool(subnet=cfg["subnet"]) for cfg in inputs.get("ipamConfigs", [])
        ]
        self.client.networks.create(
            name,
            driver=inputs.get("driver", "bridge"),
            ipam=docker.types.IPAMConfig(pool_configs=pools),
            labels=labels,
        )
        self.log(f"  network   {name}: created")

    def _remove_network(self, network: Any) -> None:
        network.reload()
        for cid in network.attrs.get("Containers") or {}:
            self.client.containers.get(cid).remove(force=True)
        network.remove()

    def _volume(self, item: Declared) -> None:
        name = item.inputs["name"]
        try:
            volume = self.client.volumes.get(name)
        except docker.errors.NotFound:
            labels = {i["label"]: i["value"] for i in item.inputs.get("labels", [])}
            if self.data_fingerprint:
                labels[DATA_FINGERPRINT] = self.data_fingerprint
            self.client.volumes.create(name, labels=labels)
            self.log(f"  volume    {name}: created")
            return
        found = (volume.attrs.get("Labels") or {}).get(DATA_FINGERPRINT)
        if self.data_fingerprint and found and found != self.data_fingerprint:
            raise StaleData(
                f"volume {name} holds data initialised with other secrets than this "
                f"checkout's .lab/secrets.json (fingerprint {found}, here "
                f"{self.data_fingerprint}); its database would refuse this checkout's "
                "passwords. Run `make down` to start the lab afresh, or use the checkout "
                "that created it."
            )
        self.log(f"  volume    {name}: kept")

    # --- images -----------------------------------------------------------------------------

    def _image(self, item: Declared) -> None:
        tag = item.inputs["imageName"]
        build = item.inputs["build"]
        context = REPO / build.get("context", ".")
        dockerfile = REPO / build.get("dockerfile", f"{build.get('context', '.')}/Dockerfile")
        started = time.monotonic()
        self.log(f"  image     {tag}: building from {dockerfile.relative_to(REPO)}")
        step = ""
        image_id = None
        for chunk in self.client.api.build(
            path=str(context),
            dockerfile=str(dockerfile.relative_to(context)),
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            labels={PLATFORM_LABEL: "image"},
        ):
            if "error" in chunk:
                raise RuntimeError(f"building {tag} failed: {chunk['error'].strip()}")
            line = chunk.get("stream", "").strip()
            if line.startswith("Step "):
                step = line.split(" : ")[0]
                if sys.stdout.isatty():
                    print(f"\r    {step:<20}", end="", flush=True)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
        if sys.stdout.isatty():
            print("\r", end="")
        if image_id is None:
            image_id = self.client.images.get(tag).id
        self.image_ids[tag] = image_id
        self.log(f"  image     {tag}: {image_id[7:19]} ({time.monotonic() - started:.0f}s, {step})")

    # --- containers -------------------------------------------------------------------------

    def _container(self, item: Declared) -> None:
        inputs = item.inputs
        name = inputs["name"]
        image = inputs["image"]
        image_id = self.image_ids.get(image) or self.client.images.get(image).id
        wanted = spec_hash(inputs, image_id)
        try:
            existing: Container | None = self.client.containers.get(name)
        except docker.errors.NotFound:
            existing = None
        if existing is not None:
            if existing.labels.get(SPEC_LABEL) == wanted:
                if existing.status != "running":
                    existing.start()
                    self.log(f"  container {name}: started")
                else:
                    self.log(f"  container {name}: unchanged")
                return
            existing.remove(force=True)
            self.log(f"  container {name}: replacing (declaration or image changed)")
        self._create_container(inputs, wanted)
        self.log(f"  container {name}: created")

    def _create_container(self, inputs: dict[str, Any], spec: str) -> None:
        api = self.client.api
        networks = inputs.get("networksAdvanced") or []
        health = inputs.get("healthcheck")
        host_config = api.create_host_config(
            restart_policy={"Name": inputs.get("restart", "no")},
            binds={
                v["volumeName"]: {"bind": v["containerPath"], "mode": "rw"}
                for v in inputs.get("volumes", [])
            },
            cap_add=(inputs.get("capabilities") or {}).get("adds"),
            sysctls=inputs.get("sysctls") or None,
            network_mode=inputs.get("networkMode") or (networks[0]["name"] if networks else None),
            log_config=docker.types.LogConfig(
                type=inputs.get("logDriver", "json-file"), config=inputs.get("logOpts", {})
            ),
        )
        networking = None
        if networks:
            first = networks[0]
            networking = api.create_networking_config(
                {
                    first["name"]: api.create_endpoint_config(
                        ipv4_address=first.get("ipv4Address"), aliases=first.get("aliases")
                    )
                }
            )
        created = api.create_container(
            inputs["image"],
            name=inputs["name"],
            hostname=inputs.get("hostname"),
            command=inputs.get("command"),
            environment=inputs.get("envs", []),
            labels=_labels(inputs) | {SPEC_LABEL: spec},
            healthcheck={
                "test": health["tests"],
                "interval": _nanoseconds(health["interval"]),
                "timeout": _nanoseconds(health["timeout"]),
                "retries": int(health["retries"]),
                "start_period": _nanoseconds(health["startPeriod"]),
            }
            if health
            else None,
            host_config=host_config,
            networking_config=networking,
            # Pulumi hands numbers over as floats; the Engine wants whole seconds.
            stop_timeout=int(inputs["stopTimeout"]) if inputs.get("stopTimeout") else None,
        )
        cid = created["Id"]
        for extra in networks[1:]:
            api.connect_container_to_network(
                cid,
                extra["name"],
                ipv4_address=extra.get("ipv4Address"),
                aliases=extra.get("aliases"),
            )
        if inputs.get("uploads"):
            api.put_archive(cid, "/", _tar(inputs["uploads"]))
        api.start(cid)

    # --- health and teardown ----------------------------------------------------------------

    def wait_healthy(self, names: list[str], timeout: float) -> dict[str, str]:
        """Poll until every container is healthy (or the timeout); return the last states."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        last_line = ""
        while True:
            for name in names:
                states[name] = health_of(self.client.containers.get(name))
            healthy = sum(s == "healthy" for s in states.values())
            waiting = sorted(n for n, s in states.items() if s != "healthy")
            line = f"  health    {healthy}/{len(names)} healthy" + (
                f"; waiting for {', '.join(waiting[:3])}{'...' if len(waiting) > 3 else ''}"
                if waiting
                else ""
            )
            if line != last_line:
                self.log(line)
                last_line = line
            if not waiting or time.monotonic() > deadline:
                return states
            time.sleep(2)

    def apply_afresh_if_stale(self, declared: list[Declared], platform: str) -> list[str]:
        """apply(); if a data volume belongs to other secrets, remove the platform's lab first.

        For runs that own the lab (`make test`): another checkout's lab on this Docker Engine
        is of no use to them, and its data cannot be opened with this checkout's secrets."""
        try:
            return self.apply(declared)
        except StaleData as stale:
            self.log(f"  {stale.args[0].split(';')[0]}: starting the lab afresh")
            self.remove_platform(platform)
            return self.apply(declared)

    def remove_platform(self, platform: str) -> None:
        """Remove the lab's containers, networks and volumes: only those labelled as ours."""
        selector = {"label": f"{PLATFORM_LABEL}={platform}"}
        for container in self.client.containers.list(all=True, filters=selector):
            container.remove(force=True)
            self.log(f"  removed container {container.name}")
        for network in self.client.networks.list(filters=selector):
            network.reload()
            # A helper someone attached (a benchmark killed mid-run) would block the removal:
            # it is disconnected, not removed, for it is not the lab's.
            for cid in network.attrs.get("Containers") or {}:
                network.disconnect(cid, force=True)
                self.log(f"  disconnected      {cid[:12]} from {network.name}")
            network.remove()
            self.log(f"  removed network   {network.name}")
        for volume in self.client.volumes.list(filters=selector):
            volume.remove(force=True)
            self.log(f"  removed volume    {volume.name}")


def health_of(container: Container) -> str:
    container.reload()
    state = container.attrs["State"]
    if state.get("Status") != "running":
        return str(state.get("Status"))
    return str((state.get("Health") or {}).get("Status", "no healthcheck"))


def _tar(uploads: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for upload in uploads:
            data = upload["content"].encode()
            info = tarfile.TarInfo(upload["file"].lstrip("/"))
            info.size = len(data)
            info.mode = int(upload.get("permissions") or "0644", 8)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
