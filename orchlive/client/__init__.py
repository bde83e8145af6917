"""The command-line client of a live cluster (``python -m orchlive tasks | nodes | submit | logs ...``).

``http`` makes the calls and turns every error into one line, ``output`` writes tables,
JSON and YAML, ``views`` says what each object shows, ``commands`` holds the subcommands.
"""
