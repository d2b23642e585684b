"""Operating the pipeline: the demo, the status report, and the processes they start."""
