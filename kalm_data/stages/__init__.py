"""The stages of the pipelines, one per file (the contract: ``kalm_data.stage``)."""
