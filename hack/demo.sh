#!/usr/bin/env bash
# make demo: local cluster -> operator (CRDs, webhook) -> examples/pd-disagg.yaml -> pods per role and status
# -> examples/pd-batches.yaml (ratio placement, batch by batch) -> rbg topology.
set -euo pipefail
cd "$(dirname "$0")/.."
RBG=${RBG:-.venv/bin/rbg}
"$RBG" cluster up
eval "$("$RBG" cluster env)"
echo; echo "== nodes and their topology"
kubectl get nodes -o custom-columns='NAME:.metadata.name,ZONE:.metadata.labels.topology\.kubernetes\.io/zone,RACK:.metadata.labels.topology\.rbg\.workloads\.x-k8s\.io/rack,NVLINK:.metadata.labels.nvidia\.com/gpu\.clique,GPU:.status.allocatable.nvidia\.com/gpu,CPU:.status.allocatable.cpu,MEMORY:.status.allocatable.memory'
echo; echo "== operator"
"$RBG" cluster operator up
echo; echo "== kubectl apply -f examples/pd-disagg.yaml"
kubectl apply -f examples/pd-disagg.yaml
kubectl wait rolebasedgroup/pd-disagg --for=condition=Ready --timeout=180s
echo; echo "== pods per role, with their node"
kubectl get pods -l rbg.workloads.x-k8s.io/group-name=pd-disagg --sort-by=.metadata.name \
  -o custom-columns='ROLE:.metadata.labels.rbg\.workloads\.x-k8s\.io/role-name,POD:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,NODE:.spec.nodeName,GPU:.spec.containers[0].resources.limits.nvidia\.com/gpu'
echo; echo "== rbg status pd-disagg"
"$RBG" status pd-disagg
echo; echo "== kubectl apply -f examples/pd-batches.yaml (the seed's 2 prefill : 1 decode per node, batch by batch)"
kubectl apply -f examples/pd-batches.yaml
kubectl wait rolebasedgroup/pd-batches --for=condition=Ready --timeout=180s
echo; echo "== rbg topology pd-batches (each batch whole on its own node, planned before any pod ran)"
"$RBG" topology pd-batches
echo
echo "Use it:   eval \"\$($RBG cluster env)\"; kubectl get rbg      Stop it:  make demo-down"
