"""netlet's Python SDK: asyncio's event loop on netlet's WIT.

A handler is an ordinary asyncio program (``asyncio.run(main())``, ``loop.create_server``,
``Protocol`` / ``DatagramProtocol`` classes, ``asyncio.sleep``, tasks). ``netlet build
server.py`` packages it with this SDK; nothing here is imported by the handler itself.

- ``netlet.loop``: the event loop (``NetletEventLoop``), its transports and servers.
- ``netlet.runtime``: the component's export (``init`` / ``handle``), how the handler's
  program is started, and how an uncaught exception stops the instance.
"""

SDK_VERSION = "0.1.0"
