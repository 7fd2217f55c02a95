"""The lab test kit: what tests, benchmarks and `make callflow` use to drive the running lab.

- `labkit.lab`: the lab's sites, containers, addresses and ports, derived from the topology model
  (Pulumi.lab.yaml) and `.lab/demo-tenant.json`, never retyped;
- `labkit.leases`: which suite uses which demo device (one registry, a double claim fails);
- `labkit.docker`, `labkit.wait`, `labkit.control`: running commands in containers, bounded
  waits, and the proxies' and relays' management interfaces (bans, bindings, RPC);
- `labkit.devices`, `labkit.baresip`, `labkit.wsphone`, `labkit/scenarios/`: SIP clients;
- `labkit.callflow` (`make callflow`), `labkit.pg_cluster` (a throwaway PostgreSQL cluster),
  `labkit.targets` (testinfra targets), `labkit.hosts` (the stand-in hosts, for the shell).

Nothing here imports from `tests/` or `bench/`.
"""
