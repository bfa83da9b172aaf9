"""``python -m plabdata.emulator [options]``: the same as ``plabdata emulator serve``."""

from plabdata.emulator.cli import serve_command

if __name__ == "__main__":
    serve_command(prog_name="python -m plabdata.emulator")
