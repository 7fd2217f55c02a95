"""baresip in a test device: a TLS phone with (by default) mandatory SRTP, as desk phones run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .devices import Device
from .lab import PORTS, SIP_DOMAIN, SITES

BARESIP_CONFIG = """\
poll_method epoll
sip_listen {ip}:0
sip_cafile /ca.pem
sip_transports udp,tcp,tls
dns_server {dns}:{dns_port}
audio_player {player}
audio_source aufile,{dir}/tone.wav
audio_alert aufile,{dir}/alert.wav
audio_srate 8000
audio_channels 1
# No ringback tone: baresip 1.1 crashes now and then (core dump, "unsupported sample format")
# when the answer stops the ringback it plays on the aufile player.
ringback_disabled yes
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module aufile.so
module aubridge.so
module srtp.so
module dtls_srtp.so
module_app account.so
module_app menu.so
"""

# A 440 Hz tone, one minute of it: what the phone "says".
TONE = (
    "import math, struct, wave\n"
    "w = wave.open('{dir}/tone.wav', 'wb'); w.setnchannels(1); w.setsampwidth(2)\n"
    "w.setframerate(8000)\n"
    "w.writeframes(b''.join(struct.pack('<h', int(8000 * math.sin(i / 8000 * 2 * math.pi "
    "* 440))) for i in range(8000 * 60)))\n"
)


@contextmanager
def logs_on_failure(*logs: tuple[Device, str]) -> Iterator[None]:
    """A failed assertion inside also shows these (device, log path) logs' tails."""
    try:
        yield
    except AssertionError as e:
        shown = "\n".join(f"--- {d.name}:\n{d.sh(f'cat {f}').stdout[-2500:]}" for d, f in logs)
        raise AssertionError(f"{e}\n{shown}") from None


def start_baresip(
    device: Device,
    user: str,
    password: str,
    outbound: str,
    dial: str = "",
    seconds: int = 40,
    mediaenc: str = "srtp-mand",
    record: bool = True,
) -> str:
    """Run baresip in the device for `seconds`: registers over `outbound`, auto-answers, and
    dials `dial` if given. What it hears goes to heard.wav beside the log, unless `record` is
    off: then its player is an unconnected bridge that takes nothing. baresip 1.1's file player
    crashes now and then when a re-INVITE restarts it (click-to-dial's third-party call
    control re-INVITEs the phone that answered first). Returns the path of its log inside the
    container."""
    directory = f"/tmp/bs-{user}"
    config = BARESIP_CONFIG.format(
        ip=device.ip, dns=SITES[device.site]["dns"], dns_port=PORTS.dns, dir=directory,
        player=f"aufile,{directory}/heard.wav" if record else "aubridge,nowhere",
    )  # fmt: skip
    account = (
        f'<sip:{user}@{SIP_DOMAIN};transport=tls>;auth_pass={password};outbound="{outbound}";'
        f"mediaenc={mediaenc};answermode=auto;regint=300;audio_codecs=PCMA\n"
    )
    dial_opt = f"-e '/dial {dial}'" if dial else ""
    r = device.sh(
        f'mkdir -p {directory} && python3 -c "{TONE.format(dir=directory)}" && '
        f"cat > {directory}/config <<'CFG'\n{config}CFG\n"
        f"cat > {directory}/accounts <<'ACC'\n{account}ACC\n"
        f"(timeout {seconds + 5} baresip -f {directory} {dial_opt} -t {seconds} "
        f"> {directory}/log.txt 2>&1 &)"
    )
    assert r.returncode == 0, r.stderr
    return f"{directory}/log.txt"
