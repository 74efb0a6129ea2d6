"""``python -m mailoauth``: the same as the ``mailoauth`` command."""

from mailoauth.cli import main

main()
