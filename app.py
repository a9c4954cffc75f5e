"""Brand Studio web app: ``python app.py`` (or ``studio serve``); the work is in ``studio/web.py``."""
from studio.web import main

if __name__ == "__main__":
    raise SystemExit(main())
