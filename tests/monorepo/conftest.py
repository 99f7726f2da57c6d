from tests.docker_engine import client  # noqa: F401  (fixture)
from tests.monorepo.registry import registry  # noqa: F401  (fixture)
from tests.repo_fixtures import repo, restore  # noqa: F401  (fixtures)
