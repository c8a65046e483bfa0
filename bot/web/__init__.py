"""The citizen web chat: the conversation in any browser, without an account, with or without
JavaScript, on the channel-independent core (``bot.core``)."""
