"""Build-time checks of a kalm-data image: docker/Dockerfile and docker/Dockerfile.gpu run this as
their last install step, so a wrong torch build, a missing gs:// driver or a teacher that needs
the model hub fails the build instead of the first Dataflow worker. Runs in any environment with
kalm-data installed (tests/test_docker.py runs it in the project's venv).

    python docker/check_image.py --beam 2.77.0 --torch 2.13.0 --cpu --gcs
    python docker/check_image.py --beam 2.77.0 --torch 2.14.0 --cuda 13 --gcs --faiss-gpu

Exits 1 with one line per failed check; prints ``image ok: ...`` otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys

# The teacher must load with the hub switched off (set before huggingface_hub is imported).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _checks(args: argparse.Namespace) -> list[str]:
    from importlib.metadata import entry_points, version

    problems = []
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    if args.python and py != args.python:
        problems.append(f"python {py}, expected {args.python}")

    beam = version("apache-beam")
    if args.beam and beam != args.beam:
        problems.append(f"apache-beam {beam}, expected {args.beam}")

    import torch

    base = torch.__version__.split("+")[0]
    if args.torch and base != args.torch:
        problems.append(f"torch {torch.__version__}, expected {args.torch}")
    if args.cpu and torch.version.cuda is not None:
        problems.append(f"torch {torch.__version__} is a CUDA build, expected the CPU build")
    if args.cuda and not str(torch.version.cuda or "").startswith(args.cuda):
        problems.append(f"torch is built for CUDA {torch.version.cuda}, expected {args.cuda}.x")

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    if scripts.get("kalm-data") != "kalm_data.cli:main":
        problems.append("no kalm-data console script (kalm_data.cli:main)")

    if args.gcs:
        import fsspec

        try:
            fsspec.get_filesystem_class("gs")
        except (ImportError, ValueError) as e:
            problems.append(f"no gs:// filesystem for fsspec: {e}")

    if args.faiss_gpu:
        import faiss

        if not hasattr(faiss, "StandardGpuResources"):
            problems.append(f"faiss {faiss.__version__} has no GPU support (faiss-cpu won?)")

    from kalm_data.embed.teacher import Teacher, default_teacher

    teacher = Teacher(default_teacher(), threads=1)
    shape = teacher.encode(["hello"]).shape
    if shape != (1, teacher.dim):
        problems.append(f"teacher gave shape {shape}")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", help="expected MAJOR.MINOR of this interpreter")
    p.add_argument("--beam", help="expected apache-beam version")
    p.add_argument("--torch", help="expected torch version, without the +local part")
    p.add_argument("--cpu", action="store_true", help="torch must be the CPU build")
    p.add_argument("--cuda", help="torch must be built for this CUDA major (e.g. 13)")
    p.add_argument("--gcs", action="store_true", help="fsspec must open gs:// (gcsfs)")
    p.add_argument("--faiss-gpu", action="store_true", help="faiss must have GPU support")
    args = p.parse_args(argv)
    problems = _checks(args)
    for problem in problems:
        print(f"image check failed: {problem}", file=sys.stderr)
    if not problems:
        import torch

        print(
            f"image ok: python {sys.version.split()[0]}, torch {torch.__version__}, teacher loads"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
