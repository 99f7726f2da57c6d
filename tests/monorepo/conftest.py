from tests.repo_fixtures import repo, restore  # noqa: F401  (fixtures)
