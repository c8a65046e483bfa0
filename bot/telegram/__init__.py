"""The Telegram channel: an adapter of the core (``bot.core``).

python-telegram-bot (PTB) is used for what it does well: the ``Bot`` (typed methods,
``AIORateLimiter`` honouring ``429 retry_after``), its HTTP requests made with aiohttp through
PTB's ``BaseRequest`` extension point (``http``). Receiving and the dialogue are ours,
because PTB's ``Updater``/webhook server acknowledge an update before it is handled (a crash
loses it) and its ``ConversationHandler`` keeps state in memory; here the database is the single
source of truth.

Flow of one update (``app``, ``envelope``, ``adapter``, and the core)::

    Telegram --(webhook POST | getUpdates)--> record in the inbox (encrypted, unique update_id)
             <-- 2xx / next offset, only once recorded (5xx / same offset when the DB is down)
    core processor: per citizen, in update_id order; citizens concurrently
       adapter routes the update -> core.apply(event): one transaction with the conversation,
          its effects, the inbox mark "applied" and the encrypted chat id
       send the replies (inline keyboards, long texts split), remove the pressed keyboard,
       mark "done" (batched) and erase the payload.

Telegram's own cases: a blocked bot or a deleted chat is logged without identity and
``ChatIdentity.blocked`` set, nothing of the citizen's contribution undone; in a group the bot
says once that it only talks in private chats; during a database outage each citizen writing
is told once about a temporary problem.
"""
