"""Devices by transport: the :class:`~edgeprune.devices.base.Device` interface (``base``), this machine (``local``),
boards over SSH (``ssh``), labgrid board-farm places (``labgrid``), and the inventory that opens them by name.

What runs on a device once it is open (the runner client, the cache, the board lock, provisioning) is in
:mod:`edgeprune.board`, written against the interface alone.
"""
