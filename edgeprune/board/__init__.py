"""Services on a board, written once against the :class:`~edgeprune.devices.base.Device` interface whatever the
transport: ``runner`` (the client of the device runner's JSON protocol) and ``replies`` (its typed replies),
``cache`` (files uploaded once, by content), ``lock`` (one bench per board) and ``provision``
(``edgeprune devices setup``)."""
