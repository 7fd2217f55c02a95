"""Pulumi entry point: `pulumi up --stack lab|production`, or `make lab` without the CLI."""

from pbx_infra.stack import main

main()
