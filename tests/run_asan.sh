#!/usr/bin/env bash
# Build nncore's Cython kernels with AddressSanitizer in a temporary COPY of
# the repository (the main tree's .so files are not touched) and run the
# kernel and model tests under ASan.  Not part of the normal test run.
#
#   tests/run_asan.sh                      # default test selection
#   tests/run_asan.sh tests/test_fused.py  # your own pytest arguments
#   KEEP=1 tests/run_asan.sh               # keep the temporary copy
#   VALGRIND=1 tests/run_asan.sh           # no ASan: normal build under valgrind
#                                          # (slow; default subset: test_kernels.py)
#
# Exit status: 0 clean, 1 ASan/valgrind findings, 2 tests failed without
# findings, 3 build failure.  Reports are written to $WORK/asan.<pid>.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/nncore-asan.XXXXXX")"
if [[ "${KEEP:-0}" != "1" ]]; then
    trap 'rm -rf "$WORK"' EXIT
fi
echo "== nncore ASan run: copy of $REPO in $WORK"

# ---- copy the tracked and untracked-but-not-ignored files (no build outputs)
cd "$REPO"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            [[ -f "$f" ]] && { mkdir -p "$WORK/$(dirname "$f")"; cp -p "$f" "$WORK/$f"; }
        done
else
    cp -r nncore src_cython tests setup.py pyproject.toml "$WORK"/
    find "$WORK" \( -name '*.so' -o -name '__pycache__' \) -prune -exec rm -rf {} +
fi
# the data files the dataset tests look for sit beside the checkout
if [[ -z "${NNCORE_DATA_DIR:-}" && -d "$REPO/../shared/data/fashion-mnist" ]]; then
    export NNCORE_DATA_DIR="$(cd "$REPO/../shared/data/fashion-mnist" && pwd)"
fi

cd "$WORK"
if [[ "${VALGRIND:-0}" == "1" ]]; then
    echo "== building (normal flags, NNCORE_DEBUG=1 for bounds checks in Python-level calls)"
    if ! NNCORE_DEBUG=1 "$PY" setup.py build_ext --inplace --force >"$WORK/build.log" 2>&1; then
        tail -40 "$WORK/build.log"; echo "== BUILD FAILED"; exit 3
    fi
    TESTS=("${@:-tests/test_kernels.py}")
    echo "== valgrind: pytest ${TESTS[*]}"
    PYTHONMALLOC=malloc PYTHONPATH="$WORK" valgrind --error-exitcode=1 --quiet \
        --suppressions=/dev/null --track-origins=no \
        "$PY" -m pytest "${TESTS[@]}" -x -q -p no:cacheprovider
    rc=$?
    [[ $rc -eq 0 ]] && echo "== valgrind: CLEAN" || echo "== valgrind: exit $rc (see above)"
    exit $(( rc == 0 ? 0 : 1 ))
fi

LIBASAN="$(gcc -print-file-name=libasan.so)"
if [[ ! -e "$LIBASAN" ]]; then
    echo "== libasan.so not found (gcc -print-file-name=libasan.so -> $LIBASAN); try VALGRIND=1"
    exit 3
fi
echo "== building with NNCORE_SANITIZE=address (log: build.log)"
if ! NNCORE_SANITIZE=address "$PY" setup.py build_ext --inplace --force >"$WORK/build.log" 2>&1; then
    tail -40 "$WORK/build.log"; echo "== BUILD FAILED"; exit 3
fi
grep -q -- "-fsanitize=address" nncore/_ext/build_info.json || {
    echo "== the build did not record -fsanitize=address"; exit 3; }

if [[ $# -gt 0 ]]; then
    TESTS=("$@")
else
    TESTS=()
    for t in tests/test_kernels.py tests/test_gradcheck_ops.py tests/test_backend_equivalence.py \
             tests/test_golden.py tests/test_fused.py tests/test_fused_team.py tests/test_model_api.py \
             tests/test_bad_input.py tests/test_saving.py tests/test_fuzz_files.py \
             tests/test_faults.py tests/test_step_plan.py tests/test_hostile.py \
             tests/test_save_safety.py tests/test_keras_files.py tests/test_conv.py \
             tests/test_wrappers.py; do
        [[ -f "$t" ]] && TESTS+=("$t")
    done
fi

echo "== pytest under ASan: ${TESTS[*]}"
# detect_leaks=0: CPython itself "leaks" by design at exit.
# log_path: reports go to files (pytest captures fd 2, and an abort would lose them).
# Child processes started by the tests inherit LD_PRELOAD/ASAN_OPTIONS, so
# they are checked as well (the fuzz child skips its RLIMIT_AS under
# NNCORE_UNDER_ASAN: ASan's shadow memory needs terabytes of address space).
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0:allocator_may_return_null=1:log_path=$WORK/asan"
export NNCORE_UNDER_ASAN=1
# libstdc++ is preloaded too: C++ extension modules the suite imports (scipy,
# scikit-learn, pandas) throw C++ exceptions, and ASan's __cxa_throw
# interceptor needs the real one resolved when it starts
LIBSTDCXX="$(gcc -print-file-name=libstdc++.so)"
LD_PRELOAD="$LIBASAN:$LIBSTDCXX" PYTHONPATH="$WORK" "$PY" -m pytest "${TESTS[@]}" -q -p no:cacheprovider \
    -p no:randomly 2>&1 | tee "$WORK/pytest.log" | tail -40
rc=${PIPESTATUS[0]}

errors=()
warnings=()
for r in "$WORK"/asan.*; do
    [[ -e "$r" ]] || continue
    if grep -q "ERROR: AddressSanitizer" "$r"; then errors+=("$r"); else warnings+=("$r"); fi
done
for r in "${warnings[@]}"; do
    # e.g. "failed to allocate 0x... bytes" when a test checks a huge request
    # is refused (allocator_may_return_null=1 turns it into a MemoryError)
    echo "== ASan warning (not an error) in $r: $(head -c 300 "$r")"
done
if [[ ${#errors[@]} -gt 0 ]]; then
    echo "== AddressSanitizer FINDINGS (${#errors[@]} report(s)):"
    for r in "${errors[@]}"; do
        echo "---- $r"
        grep -E "ERROR: AddressSanitizer|^    #[0-9]+ .*(nncore|src_cython|\.pyx|\.h:)|SUMMARY" "$r" | head -40
        # which test: the children of isolated tests print their command line
    done
    if [[ "${KEEP:-0}" != "1" ]]; then
        mkdir -p "${TMPDIR:-/tmp}/nncore-asan-reports"
        cp "${errors[@]}" "${TMPDIR:-/tmp}/nncore-asan-reports/" &&
            echo "(reports copied to ${TMPDIR:-/tmp}/nncore-asan-reports)"
    fi
    exit 1
fi
if [[ $rc -ne 0 ]]; then
    echo "== no ASan report, but pytest exited with $rc (test failures, see above)"
    exit 2
fi
echo "== ASan: CLEAN (pytest exit 0, no reports)"
exit 0
