"""The end-to-end tests' fixtures: the role matrix's seeded pilot (a record behind every
route's id) is the world the fuzzing starts from."""

from tests.test_role_matrix import scene  # noqa: F401
