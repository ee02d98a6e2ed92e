"""``python -m sandbox.synthetic``: the synthetic dataset generator on its own (``python -m sandbox generate``
does the same through the sandbox's command line)."""

from sandbox.synthetic import main

raise SystemExit(main())
