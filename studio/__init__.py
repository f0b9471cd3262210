"""The imagination studio: a Gradio front end over `imagination/`.

  forms     form values <-> ImagineSettings, and the checks a user sees as messages
  live      a Run as the page watches it: status lines, similarity history, clean stops
  handlers  the event handlers (generators streaming each run)
  media     GIF, MP4 and contact sheet of a sequence
  outputs   the outputs folder: saving, listing, and the only path a client may name
  tabs      one function per tab: controls and wiring
  app       the page itself: build_app() and launch()
"""

from studio.app import build_app, launch

__all__ = ["build_app", "launch"]
