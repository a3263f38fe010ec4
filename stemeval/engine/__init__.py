"""The one run loop: stems prepared in worker processes, the networks batched in the main
process, rows written in order."""
