"""Grafana dashboards and Prometheus alert rules as code, generated from the course catalog.

`python -m dashboards.build` writes them to dist/dashboards/; `python -m dashboards.apply`
uploads the dashboards to Grafana; `./pants run dashboards:pictures` draws them from real data
(`dashboards.pictures`, `dashboards.views`, `dashboards.draw`).
"""
