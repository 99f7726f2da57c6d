from tests.docker_engine import client  # noqa: F401  (fixture)
