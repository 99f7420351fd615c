"""The interfaces: the command line, the benchmark runner, the demo, and the environment check."""
