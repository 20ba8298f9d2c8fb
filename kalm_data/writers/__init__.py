"""Writers: atomic Parquet shards, the rejected output, the manifest and the final commit."""
