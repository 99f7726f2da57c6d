"""Infrastructure: the Pulumi program, its stack settings and the generated Helm values."""
