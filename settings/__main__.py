"""``python -m settings check``: validate the current environment (names only, never values);
``python -m settings docs``: print the variables table of docs/architecture.md from the registry."""

from __future__ import annotations

import argparse
import sys

from settings.load import load_settings
from settings.model import SettingsError
from settings.registry import docs_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m settings", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check", "docs"])
    args = parser.parse_args(argv)
    if args.command == "docs":
        sys.stdout.write(docs_table())
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"settings: {exc}", file=sys.stderr)
        return 2
    sections = ("graph", "salesforce", "akamai", "webhook", "connector")
    configured = [name for name in sections if getattr(settings, name) is not None]
    print(f"settings: valid; warehouse {settings.warehouse_path}; configured: {', '.join(configured) or 'nothing'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
