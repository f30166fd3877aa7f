"""The differential tests' programs, one per scenario: `python3 suite.py NAME [ARGS]`.

Each scenario is a module with a `main(*args)` coroutine and no effects at import
(netlet build imports them while it snapshots; the program runs when the instance starts).
"""

import asyncio
import sys

import t_close
import t_echo
import t_errors
import t_flow
import t_streams
import t_timers
import t_transport
import t_udp
import t_connect

SCENARIOS = {
    "close": t_close,
    "echo": t_echo,
    "errors": t_errors,
    "flow": t_flow,
    "streams": t_streams,
    "timers": t_timers,
    "transport": t_transport,
    "udp": t_udp,
    "connect": t_connect,
}

asyncio.run(SCENARIOS[sys.argv[1]].main(*sys.argv[2:]))
