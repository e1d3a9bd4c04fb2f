"""How a bench reports what it is doing: ``progress(device_name, message)``, called from every device's worker."""

from __future__ import annotations

from typing import Callable

Progress = Callable[[str, str], None]
