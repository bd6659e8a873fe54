#!/usr/bin/env bash
# Beam's Prism runner for the analysis, built with the machine's Go toolchain from Beam's own
# Go module at exactly the apache-beam version installed (Beam promises no compatibility across
# versions). Beam's Python SDK would otherwise download a Prism release from GitHub at run time.
#
#   engines/prism.sh build              build once into the cache; print the binary's path
#   engines/prism.sh analyse ARGS...    python -m analysis ARGS on Prism (e.g. --run-dir RUN)
#
# The cache is $EVALSUITE_ENGINES_CACHE (default ~/.cache/evalsuite-engines): the Go module
# downloads (about 0.9 GB) and one binary per Beam version (about 66 MB).
set -euo pipefail

PYTHON="${PYTHON:-python}"
CACHE="${EVALSUITE_ENGINES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/evalsuite-engines}"
BEAM_VERSION="$("$PYTHON" -c 'from importlib.metadata import version; print(version("apache-beam"))')"
BINARY="$CACHE/prism-$BEAM_VERSION/prism"

build() {
    if [ ! -x "$BINARY" ]; then
        command -v go >/dev/null || { echo "error: go is not installed; Prism is built with it" >&2; exit 2; }
        echo "prism: building github.com/apache/beam/sdks/v2/go/cmd/prism@v$BEAM_VERSION (once; a few minutes)" >&2
        GOBIN="$(dirname "$BINARY")" GOMODCACHE="$CACHE/gomod" GOFLAGS=-modcacherw \
            go install "github.com/apache/beam/sdks/v2/go/cmd/prism@v$BEAM_VERSION" >&2
    fi
    echo "$BINARY"
}

case "${1:-}" in
    build)
        build
        ;;
    analyse)
        shift
        binary="$(build)"
        # LOOPBACK: Prism runs the Python SDK's work in this process's own worker; it stops with it.
        exec "$PYTHON" -m analysis "$@" -- --runner=PrismRunner --prism_location="$binary" --environment_type=LOOPBACK
        ;;
    *)
        echo "usage: engines/prism.sh build | analyse --run-dir RUN [analysis flags]" >&2
        exit 2
        ;;
esac
