"""What the console does, one module per concern, without HTTP (the routes are in
:mod:`moderation.routes`): ``scope`` (who sees what), ``audit`` (the journal), ``queue`` (the
contributions to moderate), ``actions`` (approve, reject, edit, reclassify, duplicate),
``dashboard``, ``exports``, ``accounts`` (staff accounts and signing in)."""
