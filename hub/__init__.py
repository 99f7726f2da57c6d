"""The JupyterHub part: launch planning, spawners, hub configuration (local and z2jh).

`hub.launch`, `hub.settings` and `hub.pages` are pure (data in, data out, no I/O) and import no
JupyterHub. Infra imports the first two (`infra/values.py`): it writes the hub's Helm values
(`custom`) from the hub's own `HubSettings` with `settings_to_custom`, and the hub reads them back
with `parse_custom`. `hub.config` and `hub.z2jh` configure JupyterHub by class name; the
spawners, the authenticator and the local hub need JupyterHub installed.
"""
