"""The command line: thin commands over the library API; every command has --json."""
