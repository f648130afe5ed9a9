"""BG/NBD and Gamma-Gamma: fitted by maximum likelihood in the refresh job, never in a request."""
