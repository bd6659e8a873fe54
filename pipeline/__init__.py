"""The whole pipeline behind the `evalsuite` command: every stage in order, under a supervising process."""
