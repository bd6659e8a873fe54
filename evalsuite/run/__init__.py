"""The run folder's contract: layout, manifest and schema, stage declarations, fingerprints, atomic writes, model identity."""
