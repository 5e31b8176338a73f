#!/usr/bin/env bash
# Test the Helm chart in chart/ with real tools, and print a summary. Exit status: 0 only when every check passed.
#   1. helm lint --strict of the defaults and every example, with Helm 3.19 and Helm 4
#   2. helm template of the defaults, every example and an everything-on render, each validated in one
#      kubernetes-validate --strict call against Kubernetes 1.25 and 1.35 (rendered with the matching --kube-version)
#   3. the render tests in chart/tests (wiring, credentials, securityContext, probes, refused values, ...), per Helm
#   4. live tests: the rendered MLflow flags and helm-test script against a real MLflow; the rendered bridge wiring
#      with a real cerebros-bridge and the runner's helm-test script with a real cerebros-runner, when those are built
# Tools are installed by scripts/install-helm.sh under .cache/ (idempotent).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/chart"
BIN="$ROOT/.cache/bin"
VENV="$ROOT/.cache/venvs/chart"
OUT="$ROOT/.cache/chart-test"
KUBE_VERSIONS=(1.25.0 1.35.0)
# Custom resources kubernetes-validate has no schema for; the render tests check their content.
CRD_KINDS='Certificate|ServiceMonitor'

"$ROOT/scripts/install-helm.sh"

export HELM_CACHE_HOME="$ROOT/.cache/helm-home/cache"
export HELM_CONFIG_HOME="$ROOT/.cache/helm-home/config"
export HELM_DATA_HOME="$ROOT/.cache/helm-home/data"
rm -rf "$OUT"
mkdir -p "$OUT"

declare -a SUMMARY=()
FAILED=0

# record NAME STATUS [DETAIL]
record() {
  SUMMARY+=("$(printf '%-4s  %s' "$2" "$1")")
  if [[ "$2" != "ok" ]]; then
    FAILED=$((FAILED + 1))
    [[ -n "${3:-}" ]] && printf '%s\n' "$3" | sed 's/^/    /' >&2
  fi
  return 0
}

# Scenarios: name -> helm values arguments.
declare -A SCENARIOS=([defaults]="")
for example in "$CHART"/examples/*.yaml; do
  SCENARIOS[$(basename "$example" .yaml)]="-f $example"
done
SCENARIOS[all-on]="-f $CHART/tests/values-all-on.yaml"
SCENARIOS[all-on+livebook-tls]="-f $CHART/tests/values-all-on.yaml -f $CHART/examples/values-livebook-tls.yaml"
mapfile -t NAMES < <(printf '%s\n' "${!SCENARIOS[@]}" | sort)

for helm in helm3 helm4; do
  version="$("$BIN/$helm" version --template '{{.Version}}')"
  echo "== $helm $version" >&2

  for name in "${NAMES[@]}"; do
    [[ "$name" == all-on* ]] && continue
    # shellcheck disable=SC2086 # the values arguments are meant to split
    if log="$("$BIN/$helm" lint --strict "$CHART" ${SCENARIOS[$name]} 2>&1)"; then
      record "$helm lint --strict [$name]" ok
    else
      record "$helm lint --strict [$name]" FAIL "$log"
    fi
  done

  for name in "${NAMES[@]}"; do
    for kube in "${KUBE_VERSIONS[@]}"; do
      file="$OUT/$helm-$name-$kube.yaml"
      check="$helm template | kubernetes-validate --strict -k $kube [$name]"
      # shellcheck disable=SC2086
      if ! log="$("$BIN/$helm" template thunderline "$CHART" -n thunder --kube-version "$kube" ${SCENARIOS[$name]} 2>&1 >"$file")"; then
        record "$check" FAIL "$log"
        continue
      fi
      log="$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$kube" "$file" 2>&1)" && rc=0 || rc=$?
      unexpected="$(printf '%s\n' "$log" | grep -E 'ERROR|WARN' | grep -Ev "Couldn't find schema for kind ($CRD_KINDS) " || true)"
      if [[ $rc -eq 0 && -z "$unexpected" ]]; then
        record "$check" ok
      else
        record "$check" FAIL "${unexpected:-$log}"
      fi
    done
  done
done

# run_tests LABEL PATTERN: one unittest run over chart/tests, recorded with its counts (skips included).
run_tests() {
  local label="$1" pattern="$2" log counts
  echo "== $label" >&2
  if log="$(cd "$ROOT" && CHART_TEST_HELMS="helm3=$BIN/helm3,helm4=$BIN/helm4" \
    "$VENV/bin/python" -m unittest discover -s chart/tests -t chart/tests -p "$pattern" 2>&1)"; then
    counts="$(printf '%s\n' "$log" | grep -E '^(Ran |OK)' | tr '\n' ' ')"
    record "$label: $counts" ok
  else
    counts="$(printf '%s\n' "$log" | grep -E '^(Ran |FAILED)' | tr '\n' ' ')"
    record "$label: $counts" FAIL "$log"
  fi
}

run_tests "render tests (chart/tests/test_chart.py, Helm 3 and 4)" "test_chart.py"

# The live tests run the rendered helm-test scripts and MLflow flags against real servers; MLflow comes from the
# project's own installer, the bridge and runner binaries from a build (skipped, and shown as skipped, without one).
if [[ -x "$ROOT/scripts/start-mlflow.sh" ]]; then
  "$ROOT/scripts/start-mlflow.sh" --install-only >&2
fi
run_tests "live tests (real MLflow, cerebros-bridge, cerebros-runner)" "test_live_*.py"

echo
echo "chart test summary"
printf '  %s\n' "${SUMMARY[@]}"
if [[ $FAILED -ne 0 ]]; then
  echo "$FAILED check(s) failed" >&2
  exit 1
fi
echo "all ${#SUMMARY[@]} checks passed"
