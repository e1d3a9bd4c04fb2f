"""Boards over SSH, reached as OpenSSH would reach them: ``device`` (:class:`SSHDevice`), ``settings`` (what the
inventory says about using it), ``target`` (its address merged with ``~/.ssh/config``, read by ``config``),
``connect`` (the way there, through jump hosts or a ProxyCommand), ``known_hosts`` (host keys) and ``names``
(which host and user names may be used)."""
