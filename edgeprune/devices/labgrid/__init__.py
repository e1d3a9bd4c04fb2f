"""Boards of a labgrid farm: ``device`` (a place as a :class:`Device`, its board reached over SSH), ``places``
(reserving, acquiring and releasing them) and ``session`` (the coordinator connection). Only ``device`` may be
imported without labgrid installed."""
