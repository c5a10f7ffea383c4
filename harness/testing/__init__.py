"""Test doubles that speak real protocols: `fault_server`, a fault-injecting
OpenAI-compatible server.

They ship with the package (rather than under tests/) so that benchmarks and users can run
them too: `python -m mindshift.harness.testing.fault_server --help`.
"""
