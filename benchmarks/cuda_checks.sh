#!/usr/bin/env bash
# The CUDA checks, in one pass, for a machine with a GPU (CI has none): the CUDA tests, the
# whole suite, the recording benchmark on the GPU, and the main job recorded and re-checked
# on CUDA. Logs go to $OUT (default ./cuda-out); each part has its own time limit, so one
# that hangs does not cost the others.
#
#   bash benchmarks/cuda_checks.sh [PART...]   # from the repository root; PART: cuda-tests suite
#                                              # bench record-cuda check-cuda (default: all)
#
# Where pip cannot reach an index, put the wheels the dev requirements name (syrupy, pytest,
# pytest-xdist, the third-party optimizers) in .whl/ first: they are installed from there.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-cuda-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

if [ -d .whl ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && $PY -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --upgrade --target /tmp/site . \
        || exit 1
    export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH  # the optcheck command, for the CLI tests
fi

WANTED=" ${*:-cuda-tests suite bench record-cuda check-cuda} "
part() {  # part NAME SECONDS COMMAND...: run, log to $OUT/NAME.log, say how it ended
    local name=$1 limit=$2
    shift 2
    [[ $WANTED == *" $name "* ]] || return 0
    echo "== $name: $*"
    local start=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc in $((SECONDS - start)) s"
    tail -n 15 "$OUT/$name.log"
}

$PY -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(),
'|', torch.cuda.get_device_name() if torch.cuda.is_available() else '-')"

# Every test file holding a CUDA-only test (grep -l "cuda.is_available" tests -r), whole and verbose.
CUDA_TESTS=$(grep -rl "cuda.is_available" tests --include="test_*.py" | sort)
part cuda-tests 150 $PY -m pytest -n 4 -p no:cacheprovider -p no:randomly -rs -v $CUDA_TESTS
part suite 180 $PY -m pytest -n 8 -p no:cacheprovider -p no:randomly -q -rfs ${SUITE_ARGS:-}
part bench 100 $PY benchmarks/bench_overhead.py --device cuda --repeat 11 --load-runs 0
# The main job on CUDA: record goldens there, then check a re-run against them.
part record-cuda 200 $PY -m pytest examples -n 8 -p no:cacheprovider -q -rfE --durations=5 --optcheck \
    --optcheck-device=cuda --snapshot-update
part check-cuda 200 $PY -m pytest examples -n 8 -p no:cacheprovider -q -rfE --optcheck --optcheck-device=cuda \
    --optcheck-report="$OUT/report-cuda"
[ -d "$OUT/report-cuda" ] && tar czf "$OUT/report-cuda.tgz" -C "$OUT" report-cuda && rm -rf "$OUT/report-cuda"
exit 0
