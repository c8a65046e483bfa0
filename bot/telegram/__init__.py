"""The Telegram channel: python-telegram-bot for talking to Telegram; our own receivers, inbox
and processor so that nothing is acknowledged before it is durably recorded (see ``app``)."""
