"""The JupyterHub part: launch planning, spawners, hub configuration (local and z2jh).

`hub.launch` and `hub.settings` are pure (no I/O) so that infra can import them to validate
what it renders; `hub.spawner`, `hub.local` and `hub.z2jh` need JupyterHub installed.
"""
