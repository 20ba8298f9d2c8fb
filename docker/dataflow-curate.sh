#!/usr/bin/env bash
# Launch `kalm-data curate` on Dataflow from inside the worker image, so that the launcher and
# the workers share Python, Beam, kalm-data and the default teacher's path (docs/dataflow.md).
#
#   docker/dataflow-curate.sh [--wheel dist/kalm_data-0.1.0-py3-none-any.whl] IMAGE FLAGS...
#
# Adds `--runner DataflowRunner --sdk_container_image IMAGE --sdk_location=container`; FLAGS are
# the rest: --input/--output/--cache-dir gs://..., --project, --region, --temp_location, ...
# (later flags win, so FLAGS may override these).
#
# --wheel WHEEL: run a freshly built kalm-data wheel (`pip wheel --no-deps -w dist .`) on the
#   launcher and ship it to the workers with --extra_package, without rebuilding the image.
#   CPU image and unchanged dependencies only; otherwise rebuild the image.
#
# Credentials: $CLOUDSDK_CONFIG or ~/.config/gcloud (gcloud auth application-default login) is
# mounted read-only; a key file in $GOOGLE_APPLICATION_CREDENTIALS is mounted too.
# DOCKER (default: docker) is the container command.
set -euo pipefail

usage="usage: dataflow-curate.sh [--wheel WHEEL] IMAGE CURATE_FLAGS..."
wheel=""
if [[ ${1:-} == --wheel ]]; then
  wheel=${2:?$usage}
  shift 2
fi
image=${1:?$usage}
shift

run=("${DOCKER:-docker}" run --rm)
if [[ -t 1 ]]; then run+=(-t); fi
gcloud_dir=${CLOUDSDK_CONFIG:-$HOME/.config/gcloud}
if [[ -d $gcloud_dir ]]; then run+=(-v "$gcloud_dir:/root/.config/gcloud:ro"); fi
if [[ -n ${GOOGLE_APPLICATION_CREDENTIALS:-} ]]; then
  run+=(-v "$GOOGLE_APPLICATION_CREDENTIALS:/run/secrets/gcp-key.json:ro"
        -e GOOGLE_APPLICATION_CREDENTIALS=/run/secrets/gcp-key.json)
fi
if [[ -n ${GOOGLE_CLOUD_PROJECT:-} ]]; then run+=(-e GOOGLE_CLOUD_PROJECT); fi

flags=(--runner DataflowRunner --sdk_container_image "$image" --sdk_location=container)

if [[ -z $wheel ]]; then
  exec "${run[@]}" --entrypoint kalm-data "$image" curate "${flags[@]}" "$@"
fi

if [[ ! -f $wheel ]]; then
  echo "dataflow-curate.sh: no such wheel: $wheel" >&2
  exit 2
fi
name=$(basename "$wheel")
host_wheel="$(cd "$(dirname "$wheel")" && pwd)/$name"
run+=(-v "$host_wheel:/tmp/$name:ro")
flags+=(--extra_package "/tmp/$name")
# sh -c SCRIPT $0 ARGS...: $0 is the wheel, "$@" the curate flags.
exec "${run[@]}" --entrypoint sh "$image" -c \
  'pip install -q --no-deps --force-reinstall "$0" && exec kalm-data curate "$@"' \
  "/tmp/$name" "${flags[@]}" "$@"
