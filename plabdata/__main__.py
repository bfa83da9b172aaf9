"""``python -m plabdata …``: the same as the ``plabdata`` command."""

from plabdata.cli import main

if __name__ == "__main__":
    main(prog_name="python -m plabdata")
