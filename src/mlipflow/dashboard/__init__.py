"""FireWorks' web dashboard on the configured store, working offline (``mlipflow dashboard``).

FireWorks' workflow and firework pages load jQuery from a CDN (``//code.jquery.com/jquery.min.js``);
without internet (HPC login nodes, laptops on trains) they stay blank.  :func:`dashboard_app` serves a
vendored copy from this package instead (``static/jquery-3.7.1.min.js``, from the npm package ``jquery``
3.7.1, MIT licence in ``static/LICENSE-jquery.txt``): HTML pages are rewritten on their way out, nothing of
FireWorks is changed on disk.  Every other asset of the pages (cytoscape, dagre, handlebars, jsonview,
bootstrap) ships inside FireWorks itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fireworks import LaunchPad

STATIC = Path(__file__).resolve().parent / "static"
#: asset URLs of FireWorks' templates -> the local copies served under /mlipflow-static/
LOCAL_ASSETS = {
    "//code.jquery.com/jquery.min.js": "/mlipflow-static/jquery-3.7.1.min.js",
}


def _localize(response: Any) -> Any:
    """Point CDN asset URLs of an HTML response at the local copies."""
    if response.mimetype != "text/html" or response.direct_passthrough:
        return response
    text = response.get_data(as_text=True)
    changed = text
    for remote, local in LOCAL_ASSETS.items():
        changed = changed.replace(f'"{remote}"', f'"{local}"')
    if changed != text:
        response.set_data(changed)
    return response


def dashboard_app(launchpad: LaunchPad) -> Any:
    """FireWorks' Flask app bound to ``launchpad``, serving its assets locally (idempotent)."""
    from fireworks.flask_site.app import app
    from flask import send_from_directory

    app.lp = launchpad
    if "mlipflow_static" not in app.view_functions:
        app.add_url_rule("/mlipflow-static/<path:filename>", "mlipflow_static",
                         lambda filename: send_from_directory(STATIC, filename))
        app.after_request(_localize)
    return app
