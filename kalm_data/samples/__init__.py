"""Real sample data shipped with the package (CC BY 4.0; see SOURCE.md)."""

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent


def sample_inputs() -> list[str]:
    """Paths of the shipped sample pair files (tasks ``disflqa`` and ``medquad``)."""
    return [str(p) for p in sorted(SAMPLE_DIR.glob("*.jsonl.gz"))]
