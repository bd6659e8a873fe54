"""The gate's rules as data: their settings (gate.toml), the evidence they read, paired and recipe statistics."""
