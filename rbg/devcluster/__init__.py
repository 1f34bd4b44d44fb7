"""A real local Kubernetes control plane for development, demos and tests.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler (plus a Coscheduling scheduler) and kwok
fake GPU nodes, all built from Go modules by hack/build-controlplane.sh.
"""
