#!/usr/bin/env bash
# Regenerates hack/controlplane/go.mod and go.sum for K8S_VERSION in hack/versions.env.
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging paths; a
# module that depends on it must replace each of them with the published v0.<minor>.<patch> tag. The
# list is read from the release's own go.mod, never hard-coded.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
mod_file() { (cd / && go mod download -json "$1") | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error")))'; }

gen() { # dir module-path root-module@version
  local dir=$1 name=$2 root=$3
  local upstream; upstream=$(mod_file "$root")
  cd "$dir"
  rm -f go.mod go.sum
  go mod init "$name" >/dev/null 2>&1
  go mod edit -go=1.25.0
  # copy the replace directives that point at published versions, and turn ./staging ones into tags
  go mod edit -json "$upstream" | python3 -c '
import json, sys
minor_patch = sys.argv[1]
for r in json.load(sys.stdin).get("Replace") or []:
    old, new = r["Old"]["Path"], r["New"]
    if new["Path"].startswith("./staging/") or (old.startswith("k8s.io/") and new.get("Version", "").startswith("v0." + minor_patch.split(".")[0] + ".")):
        print(f"-replace={old}={old}@v0.{minor_patch}")
    elif new.get("Version"):
        print("-replace=" + old + "=" + new["Path"] + "@" + new["Version"])
' "$4" | xargs go mod edit
  local gd; gd=$(sed -n 's/^godebug[[:space:]]\+default=\(go[0-9.]*\).*/\1/p' "$upstream" | head -1)
  if [ -n "$gd" ]; then go mod edit -godebug="default=$gd"; fi
  go mod edit -require="${root%@*}@${root#*@}"
  if [ "${root%@*}" != k8s.io/kubernetes ]; then go mod edit -replace="k8s.io/kubernetes=k8s.io/kubernetes@v1.$4"; fi
  go mod tidy
}

gen "$here/controlplane" rbg.local/controlplane "k8s.io/kubernetes@$K8S_VERSION" "${K8S_VERSION#v1.}"
sp_k8s=$SCHED_PLUGINS_K8S_VERSION
gen "$here/scheduler-plugins" rbg.local/schedulerplugins "sigs.k8s.io/scheduler-plugins@$SCHED_PLUGINS_VERSION" "${sp_k8s#v1.}"
echo "regenerated wrapper modules for k8s $K8S_VERSION and scheduler-plugins $SCHED_PLUGINS_VERSION ($sp_k8s)"
