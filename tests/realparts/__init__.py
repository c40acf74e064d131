"""Real servers on loopback for tests: Prometheus, moto's AWS server, a GitHub stand-in."""
