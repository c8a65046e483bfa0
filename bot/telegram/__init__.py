"""The Telegram channel.

python-telegram-bot (PTB) is used for what it does well: the ``Bot`` (typed methods,
``AIORateLimiter`` honouring ``429 retry_after``), its HTTP requests made with aiohttp through
PTB's ``BaseRequest`` extension point (``http``). Receiving and the dialogue are ours,
because PTB's ``Updater``/webhook server acknowledge an update before it is handled (a crash
loses it) and its ``ConversationHandler`` keeps state in memory; here the database is the single
source of truth.

Flow of one update (``app``, ``inbox``, ``processor``)::

    Telegram --(webhook POST | getUpdates)--> record in the inbox (encrypted, unique update_id)
             <-- 2xx / next offset, only once recorded (5xx / same offset when the DB is down)
    processor: per citizen, in update_id order; citizens concurrently
       DialogService.handle(event, also=mark "applied" + keep the encrypted chat id)
          -> one transaction: conversation, contribution, consent, inbox mark
       send the replies (inline keyboards, long texts split), remove the pressed keyboard,
       mark "done" (batched) and erase the payload.

Guarantees and the choices behind them:

* Effects exactly once. A re-delivered ``update_id`` inserts nothing and is not processed; the
  "applied" mark is conditional (still pending, no older pending update of the same citizen), so
  twin workers or a double delivery cannot apply an update twice or out of order.
* Replies at least once across a crash. The replies of an update are not stored; a process
  killed between the commit and the last reply leaves the update "applied", and on restart the
  citizen is shown their current step again (their contributions with references if the lost
  reply was the thank-you). The price: after a crash a citizen may see a prompt twice; never a
  missing prompt, never a missing or duplicated contribution.
* Notices (outbox: moderation news, reminders) at most once: claimed before sending, so a crash
  in between loses a notice rather than repeating it (``notifier``).
* Database outage: the webhook answers 503 (Telegram re-delivers with back-off), polling keeps
  its offset; each citizen writing meanwhile is told once about a temporary problem.
* Blocked bot / deleted chat: logged without identity, ``ChatIdentity.blocked`` set, nothing of
  the citizen's contribution undone.
* Scale-out: several webhook workers may share one PostgreSQL database (advisory lock per
  citizen while draining, batched on one connection: ``locks``; the conditional "applied" mark
  keeps it correct even without it).
  On SQLite run a single worker.
"""
