"""``python -m avt`` (what ``accelerate launch -m avt`` runs): the same as the ``avt`` command."""

from avt.cli import main

raise SystemExit(main())
