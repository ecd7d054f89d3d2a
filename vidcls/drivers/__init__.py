"""Drivers: where the per-file core runs. Each yields `vidcls.events` for a list of files.

- `local`: this process, with decoding overlapped in a producer thread;
- `workers`: one process per device sharing a queue of files;
- `ray`: a Ray Data pipeline of decode tasks and model actors.

The command line picks one; the writers consume what it yields, whichever it is.
"""
