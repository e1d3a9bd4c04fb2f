from fixtures.sshd import jump_server, ssh_client_key, ssh_home, ssh_home_with_jump, sshd_factory, sshd_server  # noqa: F401,E501 (pytest fixtures)
from fixtures.models import digits_export, isolated_cwd, mobilenet_export, tiny_int8_tflite, tiny_tflite  # noqa: F401
from fixtures.devices import bench_device  # noqa: F401
from fixtures.board import board_home, emulated_board  # noqa: F401
from fixtures.labgrid_farm import labgrid_farm  # noqa: F401
