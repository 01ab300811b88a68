"""The playground: TensorFlow Playground on chainrule's own networks, served to a browser.

Nothing in chainrule imports this package; ``chainrule playground`` imports it when run.
:mod:`~chainrule.playground.session` holds one model per connection,
:mod:`~chainrule.playground.server` the web app (pages and the WebSocket).
"""
