"""``python -m anonymise``: the CLI."""

import sys

if getattr(sys.modules.get(__package__ or "anonymise"), "__file__", None) is None:
    # 'anonymise' was imported as a namespace package: a folder of that name in the current directory
    # (the clone's own root, when run from the folder that holds it) hides the installed package
    sys.exit(
        "Error: a folder named 'anonymise' in the current directory (the clone itself?) hides the installed "
        "package; run python -m anonymise from another folder, or use the anonymise command"
    )

from anonymise.cli import main

main()
