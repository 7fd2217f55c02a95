"""Infrastructure-as-code for the PBX platform: topology model, Pulumi components, lab runner."""
