"""Teacher embeddings: loading the teacher, a content-addressed cache, length-bucketed encoding."""
