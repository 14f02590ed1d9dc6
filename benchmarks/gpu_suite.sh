#!/usr/bin/env bash
# Everything a lent GPU should measure, in one command (at most 10 minutes on an H100 / H200: the sum of the steps' budgets):
#
#     bash benchmarks/gpu_suite.sh            # from the repository root, after `bash scripts/setup_venv.sh dev`
#
# 1. every CUDA-parametrized test (the `cuda` ids of the device fixture), 2. the headline benchmarks:
# SVC on the complete Fashion-MNIST (60k) and mnist-10k, LinearSVC dense (Fashion-MNIST 60k) and sparse
# (the generated TF-IDF corpus), SVC on sparse rows, the Triton SMO step, the differentiable SVM head, and
# the scaling curve of RBF SVC on deformed digits to 10^6 rows (each fit killed after 45 s, so it says
# where it stops), and scikit-learn's SVC in an unchanged script under torchsvm.accel (Fashion-MNIST 60k).
# Each benchmark writes its record under benchmarks/results/ with the GPU's name and the date (tag: the
# GPU's model, e.g. h200); this script's own log goes beside them. Each step has a time budget, so one
# slow step cannot eat the others' time; a step that runs out is named in the log. Commit the records.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_suite.sh: no CUDA device visible to $PY (torch.cuda.is_available() is False)" >&2
    exit 1
fi
TAG=${TAG:-$("$PY" -c "import torch; print(torch.cuda.get_device_name().split()[-1].lower())")}
LOG="benchmarks/results/gpu-suite-cuda-$(date +%F)-$TAG.log"
FAILED=()

step() {  # step <budget seconds> <command...>: run it, keep its last lines in the log, note a failure
    local budget=$1
    shift
    echo "== $(date +%T) $* (budget ${budget} s)" | tee -a "$LOG"
    timeout "$budget" "$@" > >(tail -n 60 | tee -a "$LOG") 2>&1
    local rc=$?
    wait
    if [ "$rc" -ne 0 ]; then
        echo "== exit $rc ($([ "$rc" -eq 124 ] && echo "over its budget" || echo "failed")): $*" | tee -a "$LOG"
        FAILED+=("$*")
    fi
}

"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(), '| torch', torch.__version__)" | tee -a "$LOG"
step 170 "$PY" -m pytest -q -p no:cacheprovider -k cuda tests
step 60 "$PY" benchmarks/bench_dual.py --data-root "$DATA" --device cuda --datasets mnist-10k fashion-mnist --skip-qp \
    --skip-sklearn --multi-class ovo --tag "$TAG"
step 45 "$PY" benchmarks/bench_primal.py --data-root "$DATA" --device cuda --datasets fashion-mnist --C 0.1 1 \
    --skip-sklearn --tag "$TAG"
step 70 "$PY" benchmarks/bench_sparse.py --device cuda --C 0.1 1 --repeats 1 --tag "$TAG"
step 30 "$PY" benchmarks/bench_smo_steps.py --device cuda --tag "$TAG"
step 45 "$PY" benchmarks/bench_svm_head.py --device cuda --skip-cvxpylayers --shots 5 15 --batches 32 128 --repeats 3 \
    --tag "$TAG"
step 40 "$PY" benchmarks/bench_accel.py --data-root "$DATA" --skip-sklearn --tag "$TAG"
step 120 "$PY" benchmarks/bench_scale.py --data-root "$DATA" --device cuda --rows 20000 200000 1000000 \
    --libraries torchsvm --max-seconds 45 --tag "$TAG"

if [ ${#FAILED[@]} -ne 0 ]; then
    printf '== failed or over budget: %s\n' "${FAILED[@]}" | tee -a "$LOG"
    exit 1
fi
echo "== $(date +%T) done; records in benchmarks/results/*$TAG*" | tee -a "$LOG"
