from tests.unit.enrichment.fixtures import nlp  # noqa: F401
