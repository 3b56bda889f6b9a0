"""The command-line jobs: argument parsing, printing and run folders around the library.

Each module has ``parse_args(argv)``, ``run(args)`` and ``main(argv)``; ``python -m keras_tl.<job>``
reaches it through :func:`keras_tl.jobs.cli.main`. Library modules never import from here.
"""
