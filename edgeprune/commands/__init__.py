"""One module per sub-command: ``register`` adds its parser, ``run`` turns the library's answer into output
and an exit code."""
