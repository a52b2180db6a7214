"""The `nncore` command's entry point. Loading nncore and what it imports takes a second or so;
Ctrl-C in that second ends the command with one line and exit status 130, as it does later,
instead of a traceback through the imports (a module of its own: any module inside the nncore
package would load the whole package first)."""

import sys


def main() -> int:
    try:
        from nncore.cli import main as run
    except KeyboardInterrupt:
        print("nncore: interrupted", file=sys.stderr)
        return 130
    return run()
