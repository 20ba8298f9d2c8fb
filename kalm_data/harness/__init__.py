"""The run harness shared by every pipeline: progress, console and logs (more to come)."""
