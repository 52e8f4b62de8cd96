"""What the tests share: databases, records, the CLI, the daemon process, fakes."""
