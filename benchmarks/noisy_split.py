"""A copy of a ``heldout_split.py`` folder whose training pairs carry wrong positives: the
setting the ranking-consistency filter is for (LLM-generated pairs, scraped pairs).

    python benchmarks/heldout_split.py /tmp/cp/split
    python benchmarks/noisy_split.py /tmp/cp/split /tmp/cpn/split --share 0.1 --kind source

``--share`` of the training rows get another row's positive (``filter_quality.swap``: ``random``
over the whole set, ``source`` within the row's source, none keeping its own); their ids are
written to ``swapped.txt``. The held-out evaluation set (``medical/``) is linked unchanged, so
``curation_pays.py --work`` on the new folder's parent scores arms trained on noisy pairs on
the same clean queries.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from filter_quality import swap  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("split", type=Path, help="a heldout_split.py folder")
    p.add_argument("out", type=Path, help="the noisy copy")
    p.add_argument("--share", type=float, default=0.10)
    p.add_argument("--kind", choices=("random", "source"), default="source")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with gzip.open(args.split / "train.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    noisy, swapped = swap(rows, args.kind, args.share, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.out / "train.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in noisy)
    (args.out / "swapped.txt").write_text("".join(f"{i}\n" for i in sorted(swapped)))
    medical = args.out / "medical"
    if not medical.exists():
        medical.symlink_to((args.split / "medical").resolve(), target_is_directory=True)
    print(f"{len(rows)} pairs, {len(swapped)} with a swapped positive ({args.kind}) -> {args.out}")


if __name__ == "__main__":
    main()
