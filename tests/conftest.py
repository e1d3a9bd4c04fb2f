import signal

from fixtures.sshd import jump_server, ssh_client_key, ssh_home, ssh_home_with_jump, sshd_factory, sshd_server  # noqa: F401,E501 (pytest fixtures)
from fixtures.models import digits_export, isolated_cwd, mobilenet_export, tiny_int8_tflite, tiny_tflite  # noqa: F401
from fixtures.devices import bench_device  # noqa: F401
from fixtures.board import board_home, emulated_board, emulated_board_with_fp16  # noqa: F401
from fixtures.labgrid_farm import labgrid_farm  # noqa: F401
from fixtures.postgres import postgres_history, postgres_server  # noqa: F401
from fixtures.mlflow_server import mlflow_server  # noqa: F401

# The Ctrl-C tests send SIGINT to the commands they start. A suite started in the background by a script (nohup,
# `cmd &` in a shell without job control, some CI runners) inherits SIGINT ignored, and an ignored signal stays
# ignored across exec: the commands would never see it. Handling it here gives every child the default again.
signal.signal(signal.SIGINT, signal.default_int_handler)
