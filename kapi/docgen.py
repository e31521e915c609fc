"""Render the plugin reference (docs/plugins.md) from the hook specifications.

The docstrings in ``kapi/hookspecs.py`` are the contract; this module turns them into Markdown so
the documentation cannot drift from the code (pytest's ``autofunction`` idea, without Sphinx)::

    python -m kapi.docgen > docs/plugins.md

``tests/test_hookspecs.py`` fails when docs/plugins.md differs from ``render()``.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from kapi import hookspecs

HEADER = """<!-- Generated from kapi/hookspecs.py by `python -m kapi.docgen > docs/plugins.md`: edit the docstrings. -->

# Writing kapi plugins: the hook reference
"""

FOOTER = """
## Packaging a plugin

A plugin is a module (or an object) whose functions carry `@kapi.hookimpl` and are named after the
hooks above; an implementation may take any subset of a hook's arguments. Register it in the
`kapi` entry-point group of your package; the entry-point name is the plugin's name in
configuration, and a module-level `ALIASES = ("Name",)` adds the names kube-apiserver's flags use:

```ini
# setup.cfg
[options.entry_points]
kapi =
    apikey = my_package.apikey
```

`kapi plugins` lists every installed plugin with its aliases, hooks and origin.
`examples/custom_authenticator/` is a complete, installable template with tests; plugins that are
not installed (tests, embedders) are passed in code: `kapi.create_app(config, plugins=[(name, obj)])`.
Test a plugin alone with `kapi.testing.plugins.make_test_app(plugins=[(name, obj)], ...)`, or
through a real server with the `kapi_server` pytest fixture.
"""

_FIELD = re.compile(r"^:(param|returns|raises)\s*([^:]*):\s*(.*)$")


def hook_specs(module: ModuleType = hookspecs) -> list[Callable[..., Any]]:
    """The hook specifications of ``module`` in source order."""
    specs = [obj for name, obj in vars(module).items() if name.startswith("kapi_") and callable(obj)]
    return sorted(specs, key=lambda f: inspect.getsourcelines(f)[1])


def _sections(module: ModuleType) -> dict[str, str]:
    """Hook name -> the banner comment (``# ---`` block title) it sits under."""
    out: dict[str, str] = {}
    current = ""
    lines = inspect.getsource(module).splitlines()
    for index, line in enumerate(lines):
        if line.startswith("# ----") and index + 1 < len(lines) and lines[index + 1].startswith("# "):
            current = lines[index + 1][2:].strip()
        match = re.match(r"def (kapi_\w+)\(", line)
        if match:
            out[match.group(1)] = current
    return out


def _signature(func: Callable[..., Any]) -> str:
    sig = inspect.signature(func)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {func.__name__}({params}) -> {sig.return_annotation}"


def _flags(func: Callable[..., Any]) -> str:
    opts = getattr(func, f"{hookspecs.hookspec.project_name}_spec", {}) or {}
    flags = [name for name in ("firstresult", "historic") if opts.get(name)]
    return f"pluggy options: {', '.join(flags)}" if flags else ""


def _docstring(func: Callable[..., Any]) -> Iterator[str]:
    """The docstring as Markdown: ``:param x:`` fields become a list, code spans kept."""
    doc = (inspect.getdoc(func) or "").replace("``", "`")
    in_fields = False
    for line in doc.splitlines():
        field = _FIELD.match(line.strip())
        if field:
            kind, name, text = field.groups()
            label = {"param": f"`{name.strip()}`", "returns": "returns", "raises": f"raises {name.strip()}"}[kind]
            yield f"- **{label}**: {text}"
            in_fields = True
        elif in_fields and line.startswith("    ") and line.strip():
            yield f"  {line.strip()}"
        else:
            in_fields = False if not line.strip() else in_fields
            yield line


def render(module: ModuleType = hookspecs) -> str:
    """The whole reference page for ``module`` (deterministic: same input, same bytes)."""
    out = [HEADER, (inspect.getdoc(module) or "").replace("``", "`"), ""]
    specs = hook_specs(module)
    sections = _sections(module)
    out.append("| hook | area | summary |\n| --- | --- | --- |")
    for func in specs:
        summary = (inspect.getdoc(func) or "").split("\n\n", 1)[0].replace("\n", " ").replace("``", "`")
        out.append(f"| [`{func.__name__}`](#{func.__name__}) | {sections.get(func.__name__, '')} | {summary} |")
    current = None
    for func in specs:
        section = sections.get(func.__name__, "")
        if section != current:
            out.append(f"\n## {section[:1].upper() + section[1:]}\n" if section else "")
            current = section
        out.append(f"### {func.__name__}\n\n```python\n{_signature(func)}\n```\n")
        flags = _flags(func)
        if flags:
            out.append(f"*{flags}*\n")
        out.extend(_docstring(func))
        out.append("")
    out.append(FOOTER)
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    """Print the reference to stdout."""
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
