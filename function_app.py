"""The Function App: one FunctionApp, one blueprint per capability.

No logic and no clients here: the Functions host imports this module to index
the functions, so it must stay cheap (heavy SDK modules load on first use).
"""

import azure.functions as func

from handlers import BLUEPRINTS

app = func.FunctionApp()

for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
