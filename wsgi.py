"""gunicorn wsgi:app (and the `flask` command: FLASK_APP=wsgi).

Building the app creates ~150,000 objects that live as long as the process (modules,
classes, mappers, schemas, routes). The cyclic garbage collector is paused while they are
made (it would otherwise walk them again and again: about a sixth of the start-up), and
they are then frozen into the permanent generation, so that later collections in requests
skip them (and forked workers do not write to their pages). Collection resumes for
everything made after; the few thousand unreachable objects start-up leaves are kept.
"""

import gc

gc.disable()
try:
    from trialmgr import create_app

    app = create_app()
finally:
    gc.freeze()
    gc.enable()
