"""Kubernetes side of the bundle: chart values and schemas, Helm releases, readiness waits.

The Ansible modules in ``library/`` are thin argument adapters over this package.
Nothing here knows about the local (network-namespace) target.
"""
