"""The lab: run the Pulumi program without the CLI and realise it on the local engine."""
