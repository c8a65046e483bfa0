"""The channel-independent core: what every channel (Telegram, the web chat) does that is not
about the channel itself.

* **Durable inbox** (``storage.inbox``): a citizen's message is recorded before the channel is
  acknowledged (Telegram's 2xx or next offset), or recorded together with its effects and its
  replies before the web chat answers; (channel, message id) is unique, so a re-delivered
  update or a form sent twice is applied once.
* **Per-citizen order, exactly-once effects** (:mod:`bot.core.processor`): each citizen's
  messages are applied one at a time, in order, each in one transaction with the conversation,
  its effects (consent, contribution, deletion) and the inbox mark; citizens run concurrently.
  Several workers on one PostgreSQL take an advisory lock per citizen (``storage.locks``).
* **Pseudonymous identity**: a citizen is the keyed HMAC of channel + the channel's user id
  (a Telegram user id, the web chat's random cookie token); the way to reach them (a chat id)
  is encrypted in a table of its own (``storage.contacts``).
* **Notices and reminders** (:mod:`bot.core.notifier`): moderation news and reminders of idle
  drafts, queued once each, in the citizen's language; pushed by channels that can, shown at the
  next visit by the web chat.

A channel is an adapter (:class:`bot.core.processor.Adapter`): it receives, routes each message
to a dialog event (or a reply of its own), applies it with :meth:`Processor.apply`, and renders
the replies (inline keyboards on Telegram, HTML forms on the web).

Guarantees and the choices behind them:

* Effects exactly once. A re-delivered message inserts nothing and is not processed; the
  "applied" mark is conditional (still pending, no older pending message of the same citizen),
  so twin workers or a double delivery cannot apply a message twice or out of order.
* Replies at least once across a crash (channels that record first): a process killed between
  the commit and the last reply leaves the message "applied", and on restart the citizen is
  shown their current step again (their contributions with references if the lost reply was the
  thank-you). The price: after a crash a citizen may see a prompt twice; never a missing prompt,
  never a missing or duplicated contribution. The web chat stores the replies with the effects.
* Notices queued once (a unique key per meaning), delivered neither exactly nor strictly at
  most once: claimed before sending, so a crash in between loses a notice rather than repeating
  it; but a send that ends in a network error or a timeout is tried again (up to
  ``bot.core.notifier.MAX_ATTEMPTS`` times), and if Telegram had received it the citizen gets it
  twice. The web chat shows a notice once, at the next visit.
* Database outage: Telegram's webhook answers 503 (Telegram re-delivers with back-off), polling
  keeps its offset; the web chat answers "try again" and keeps the citizen's text in the form.
"""
