"""Pure building blocks shared by the compiler and the runtime: no I/O, no third-party imports."""
