"""What every benchmark shares: arguments, servers in child processes, the machine, tables."""
