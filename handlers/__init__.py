"""One module per capability, each exposing a Blueprint of thin triggers.

``BLUEPRINTS`` lists every blueprint ``function_app`` registers.
"""

BLUEPRINTS: list = []
