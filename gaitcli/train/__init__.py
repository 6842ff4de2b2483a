"""Reserved for the model core (see the issues that build on ingest)."""
