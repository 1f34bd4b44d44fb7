#!/usr/bin/env bash
# Builds the local control plane from Go modules into a cache outside the repository:
#   $RBG_K8S_BIN (default ${RBG_CACHE_DIR:-$HOME/.cache/rbg}/k8s-<K8S_VERSION>)
#     etcd kube-apiserver kube-controller-manager kube-scheduler kubectl   (hack/controlplane)
#     kwok + kwok-stages.yaml                                             (sigs.k8s.io/kwok)
#     kube-scheduler-coscheduling + podgroup-crd.yaml                     (hack/scheduler-plugins)
#     helm                                                                (helm.sh/helm/v4, for charts/rbg)
# Each part is skipped when its stamp (versions + hash of the wrapper sources) matches.
# Usage: hack/build-controlplane.sh [--print-dir]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"
OUT=${RBG_K8S_BIN:-${RBG_CACHE_DIR:-$HOME/.cache/rbg}/k8s-$K8S_VERSION}
if [ "${1:-}" = "--print-dir" ]; then echo "$OUT"; exit 0; fi

die() { echo "build-controlplane: $*" >&2; exit 1; }
command -v go >/dev/null 2>&1 || die "Go toolchain not found on PATH (need Go >= 1.25; see README.md)"
gov=$(go env GOVERSION) || die "'go env GOVERSION' failed"
case "$gov" in go1.2[5-9]*|go1.[3-9][0-9]*) ;; *) die "Go $gov is too old: need >= 1.25 (kwok $KWOK_VERSION needs 1.26)";; esac
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
mkdir -p "$OUT"
log_dir="$OUT/build-logs"; mkdir -p "$log_dir"

stamp_of() { # name, then files whose content keys the stamp
  local name=$1; shift
  { echo "$name K8S=$K8S_VERSION KWOK=$KWOK_VERSION SP=$SCHED_PLUGINS_VERSION/$SCHED_PLUGINS_K8S_VERSION $gov"; cat "$@" 2>/dev/null; } | sha256sum | cut -c1-16
}
fresh() { [ -f "$OUT/.stamp-$1" ] && [ "$(cat "$OUT/.stamp-$1")" = "$2" ]; }
step() { # name stamp command...
  local name=$1 stamp=$2; shift 2
  if fresh "$name" "$stamp"; then echo "[$name] up to date in $OUT"; return 0; fi
  echo "[$name] building (log: $log_dir/$name.log) ..."
  local t0=$SECONDS
  if ! "$@" >"$log_dir/$name.log" 2>&1; then
    tail -n 25 "$log_dir/$name.log" >&2
    die "building $name failed (full log: $log_dir/$name.log)"
  fi
  echo "$stamp" >"$OUT/.stamp-$name"
  echo "[$name] built in $((SECONDS - t0)) s"
}

ldflags_for() { # k8s version -> version ldflags for client-go and component-base
  local v=$1 minor=${1#v1.}; minor=${minor%%.*}
  local x="-s -w" p date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x="$x -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  echo "$x"
}

build_controlplane() {
  cd "$here/controlplane"
  go build -trimpath -ldflags "$(ldflags_for "$K8S_VERSION")" -o "$OUT/" ./cmd/...
}

build_kwok() {
  # kwok is built from its module source with one fix: it deletes a terminating fake pod by name
  # alone, so under load a stale delete kills the pod a StatefulSet has just recreated under the same
  # name, again and again (a rollout never settles). The fix adds the pod's UID as a precondition, as a
  # kubelet's status manager does; a stale delete then fails with a conflict and is dropped.
  go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
  local src; src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION"
  local work; work="$(mktemp -d)"
  cp -r "$src/." "$work/"; chmod -R u+w "$work"
  local file="$work/pkg/kwok/controllers/pod_controller.go"
  local old='err := c.typedClient.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, deleteOpt)'
  grep -qF "$old" "$file" || { echo "kwok $KWOK_VERSION: the pod delete to fix is not where expected" >&2; return 1; }
  local new='opt := deleteOpt; opt.Preconditions = metav1.NewUIDPreconditions(string(pod.UID)); err := c.typedClient.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, opt)'
  OLD="$old" NEW="$new" perl -0pi -e 's/\Q$ENV{OLD}\E/$ENV{NEW}/' "$file"
  grep -qF 'NewUIDPreconditions' "$file" || { echo "kwok: patch did not apply" >&2; return 1; }
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$OUT/kwok" ./cmd/kwok)
  rm -rf "$work"
  local kw="$src/kustomize/stage"
  # pod-complete is left out on purpose: it would finish Job pods at once. pod-delete is needed
  # because no kubelet confirms deletions.
  local f
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-delete.yaml; do
    [ -f "$kw/$f" ] || { echo "missing kwok stage $kw/$f" >&2; return 1; }
    echo '---'; cat "$kw/$f"
  done >"$OUT/kwok-stages.yaml"
}

build_scheduler_plugins() {
  cd "$here/scheduler-plugins"
  go build -trimpath -ldflags "$(ldflags_for "$SCHED_PLUGINS_K8S_VERSION")" -o "$OUT/" ./cmd/...
  local crd; crd="$(go env GOMODCACHE)/sigs.k8s.io/scheduler-plugins@$SCHED_PLUGINS_VERSION/manifests/coscheduling/crd.yaml"
  [ -f "$crd" ] || { echo "missing $crd" >&2; return 1; }
  cp "$crd" "$OUT/podgroup-crd.yaml"; chmod u+w "$OUT/podgroup-crd.yaml"
}

build_helm() {
  # helm's own go.mod, as released (go install pkg@version); its version string set as its Makefile does
  GOFLAGS= GOBIN="$OUT" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
}

step controlplane "$(stamp_of controlplane "$here"/controlplane/go.* "$here"/controlplane/cmd/*/main.go)" build_controlplane
step kwok "$(stamp_of kwok "$0")" build_kwok
step scheduler-plugins "$(stamp_of scheduler-plugins "$here"/scheduler-plugins/go.* "$here"/scheduler-plugins/cmd/*/main.go)" build_scheduler_plugins
step helm "$(stamp_of "helm $HELM_VERSION")" build_helm
{
  echo "kubernetes=$K8S_VERSION"
  echo "etcd=$(cd "$here/controlplane" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
  echo "kwok=$KWOK_VERSION"
  echo "scheduler-plugins=$SCHED_PLUGINS_VERSION (k8s $SCHED_PLUGINS_K8S_VERSION)"
  echo "helm=$HELM_VERSION"
  echo "go=$gov"
} >"$OUT/VERSIONS"
echo "control plane binaries ready in $OUT"
