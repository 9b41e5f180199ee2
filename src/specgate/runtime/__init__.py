"""The serving side: reads only what the compiler generated, never the HOCON specs."""
