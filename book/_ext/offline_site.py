"""Sphinx extension: keep the built pages free of scripts the offline site does not use.

Jupyter Book 1 always loads sphinx-thebe, which adds its inline configuration twice per page (a
``const THEBE_JS_URL`` redeclaration error in the browser console) and points at unpkg.com. The book
disables thebe (``launch_buttons.thebe: false``: live code would need a Binder server anyway), so its
scripts are removed from every page.
"""


def _drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    kept = [js for js in scripts
            if "thebe" not in (getattr(js, "filename", None) or "")
            and "THEBE_JS_URL" not in str(getattr(js, "attributes", {}).get("body", ""))]
    scripts[:] = kept


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
