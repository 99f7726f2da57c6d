"""The local hub: the production hub configuration (hub/) on this machine, with DockerSpawner,
the course images Pants builds, a local OpenID provider and a throwaway PostgreSQL. It runs
on a laptop and in the end-to-end tests; nothing here ships in the hub image.
"""
