"""What ``edgeprune devices list`` and ``devices check`` print."""

from __future__ import annotations

from typing import Any

from ..devices.base import Device
from ..devices.inventory import DeviceSpec, Inventory
from ..text import one_line
from .runtime_notes import runtime_notes
from .table import format_table


def render_device_list(inventory: Inventory) -> str:
    rows = []
    for name in inventory.names():
        spec = inventory.spec(name)
        rows.append([name, _where(spec), spec.threads, ", ".join(spec.tags)])
    source = f"inventory: {inventory.path}" if inventory.path else "inventory: none (only 'local')"
    return format_table(["device", "address", "threads", "tags"], rows) + f"\n\n{source}"


def _where(spec: DeviceSpec) -> str:
    if spec.is_local:
        return "this machine"
    if spec.is_labgrid:
        wanted = " ".join([*(f"{key}={value}" for key, value in spec.labgrid_tags.items()),
                           *([f"place {spec.labgrid_place}"] if spec.labgrid_place else [])])
        return f"labgrid {wanted} via {spec.labgrid_coordinator or '$LG_COORDINATOR'}"
    return "".join([f"{spec.user}@" if spec.user else "", spec.host or "", f":{spec.port}" if spec.port else ""])


def render_device_check(device: Device, info: dict[str, Any]) -> str:
    runtime = info.get("runtime") or {}
    free = info.get("workdir_free_mb")
    facts = [
        ("device", f"{device.name} ({device.address})"),
        ("reachable", "yes"),
        ("architecture", info.get("arch")),
        ("os", info.get("os")),
        ("cpu", f"{info.get('cpu_model')}, {info.get('cpu_cores')} cores"),
        ("python", f"{info.get('python')} ({info.get('python_executable')})"),
        ("numpy", info.get("numpy")),
        ("runtime", f"{runtime.get('name')} {runtime.get('version')}" if runtime else
         f"NONE: {info.get('runtime_error')} (edgeprune devices setup {device.name})"),
        ("runtimes installed", ", ".join(info.get("runtimes_installed") or []) or "none"),
        ("xnnpack", "available" if info.get("xnnpack_available") else "NOT available"),
        ("cpu governor", info.get("cpu_governor") or "n/a"),
        ("soc temperature", f"{info['soc_temp_c']:.1f} C" if info.get("soc_temp_c") is not None else "n/a"),
        ("throttled", info.get("throttled") or "n/a (no vcgencmd)"),
        ("workdir", device.workdir),
        ("workdir free", f"{free:.0f} MB" if free is not None else "n/a"),
        *(("note", note) for note in runtime_notes(info.get("arch"), runtime.get("name"),
                                                   info.get("xnnpack_available"))),
    ]
    width = max(len(key) for key, _ in facts)
    # The values are the board's own reply.
    return "\n".join(f"{key.ljust(width)}  {one_line(value)}" for key, value in facts)


def render_variant_loads(loads: list[dict[str, Any]]) -> str:
    rows = [[f"{load['model']}/{load['variant']}",
             "yes" if load["loads"] else f"{'NO' if load['loads'] is False else 'UNKNOWN'}: {load['reason']}"]
            for load in loads]
    return "\n\n" + format_table(["variant", "runtime loads it"], rows)
