"""The production hub: what runs in the hub pod, and nothing else (hub/Dockerfile copies it).

`hub.contract`, `hub.launch`, `hub.limits`, `hub.settings` and `hub.pages` are pure (data in,
data out, no I/O) and import no JupyterHub. Infra and the dashboards import `hub.contract` (the
names they share with the hub); infra also `hub.launch`, `hub.limits` and `hub.settings`: it reads
the stack file's `sso`, `limits` and `culling` with the hub's own readers and writes the hub's
Helm values (`custom`) with `settings_to_custom`; the hub reads them back with `parse_custom`.
`hub.config` and `hub.z2jh` configure JupyterHub by class name; `hub.spawner`, `hub.auth` and
`hub.sso` need JupyterHub installed. The local hub (local_hub/) and the benchmarks
(benchmarks/) build on this package; it never imports them.
"""
