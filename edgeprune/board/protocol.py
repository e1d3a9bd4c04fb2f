"""The runner's JSON protocol as the host checks it: the version, an ok reply's fields or the runner's own error,
and how a runner that died without a reply is described."""

from __future__ import annotations

from typing import Any

from ..errors import RunnerError
from ..json_fields import FieldError, Fields
from ..text import printable

PROTOCOL = 1


def check_reply(device: str, reply: dict[str, Any]) -> Fields:
    """The fields of an ok reply in this protocol; the runner's own error (cleaned) for a failed one."""
    protocol = reply.get("protocol")
    if type(protocol) is not int or protocol != PROTOCOL:
        spoken = f"protocol {protocol}" if type(protocol) is int and abs(protocol) < 1000 else "an unknown protocol"
        raise RunnerError(device, f"runner speaks {spoken}, this edgeprune speaks protocol {PROTOCOL}",
                          kind="protocol", hint="clear the device's workdir cache")
    fields = Fields(reply)
    try:
        if fields.flag("ok"):
            return fields
        error = fields.object("error")
        kind, message = error.text("kind", limit=64), error.text("message")
    except FieldError as exc:
        raise invalid_reply(device, exc) from None
    raise RunnerError(device, message or f"the runner failed ({kind or 'no reason given'})", kind=kind)


def invalid_reply(device: str, reason: Exception) -> RunnerError:
    return RunnerError(device, f"invalid reply from the board: {printable(str(reason), 300)}", kind="protocol",
                       hint="it did not answer as edgeprune's runner does: check the device's 'python' setting")


def crash_message(exit_code: int, stderr: bytes) -> str:
    """A runner that died without its JSON reply: say how (signal or exit code) and its last words (cleaned)."""
    if exit_code == -1:  # SSH reports a remote death by signal without the signal
        how = "was killed by a signal"
    elif exit_code < 0:
        how = f"was killed by signal {-exit_code}"
    elif exit_code > 128:
        how = f"exited with code {exit_code} (signal {exit_code - 128}?)"
    else:
        how = f"exited with code {exit_code}"
    lines = stderr[-16384:].decode("utf-8", "replace").splitlines()
    tail = [printable(line, 300) for line in lines if printable(line).strip()][-3:]
    return f"runner {how} without a reply" + (f": {' | '.join(tail)}" if tail else "")
