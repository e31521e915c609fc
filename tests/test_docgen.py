"""kapi.docgen renders hookspec docstrings as Markdown (the freshness check is in test_hookspecs.py)."""

from __future__ import annotations

import types

from kapi import docgen
from kapi.hookspecs import hookspec

SOURCE = '''
from __future__ import annotations

from kapi.hookspecs import hookspec

# ---------------------------------------------------------------------------------------------
# widgets


@hookspec(firstresult=True)
def kapi_make_widget(size: int) -> str | None:
    """Make a widget.

    :param size: how big, in
        centimetres.
    :returns: the widget, or ``None`` to pass.

    More prose.
    """
'''


def test_render_a_hookspec_module(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "fake_hookspecs.py"
    path.write_text(SOURCE)
    module = types.ModuleType("fake_hookspecs")
    module.__file__ = str(path)
    code = compile(SOURCE, str(path), "exec")
    exec(code, module.__dict__)
    import linecache

    linecache.checkcache(str(path))
    assert hookspec.project_name == "kapi"
    out = docgen.render(module)
    assert "| [`kapi_make_widget`](#kapi_make_widget) | widgets | Make a widget. |" in out
    assert "## Widgets" in out and "### kapi_make_widget" in out
    assert "def kapi_make_widget(size: int) -> str | None" in out
    assert "*pluggy options: firstresult*" in out
    assert "- **`size`**: how big, in\n  centimetres." in out
    assert "- **returns**: the widget, or `None` to pass." in out
    assert out.endswith("\n") and "More prose." in out


def test_main_prints_the_reference(capsys) -> None:  # type: ignore[no-untyped-def]
    assert docgen.main() == 0
    assert capsys.readouterr().out == docgen.render()
