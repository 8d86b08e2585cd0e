"""The local runtime without a Docker engine: Tansu, DynamoDB Local and Redis as child processes.

`python -m infra.local.run` (what `make run` executes) starts them and every application process; the
test fixtures use `LocalServices` on free ports.
"""
