"""The component's export (WIT ``handler``: ``init``, ``handle``) and the program's life.

Build time is not run time. componentize-py imports the entry module while it snapshots
the interpreter (at ``netlet build``), when no host exists: calling the host then would
fail the build, and what the snapshot holds is the same for every instance. So the
handler's program is compiled at build time, and the modules it imports are imported
then (a component has no files to import from later), but the program itself runs in
``init``, when the instance starts, as ``python3 server.py`` runs it: ``sys.argv``, the
time and random numbers at its top level are the instance's.

An exception that escapes handler code (a protocol callback, a task, a timer callback)
is one log line with the Python traceback, then the instance stops as a trap does: the
host closes its connections and starts a new one. At ``init`` it is ``init``'s error,
which the host logs and handles the same way.
"""

import ast
import asyncio
import builtins
import importlib
import os
import sys
import types
from asyncio.events import _set_running_loop

import wit_world.exports
from componentize_py_types import Err

dead = False
_in_init = False
_init_error = None
_program = None
_loop = None

# Stdlib frames are left out of the one-line traceback, and so are the SDK's.
_SDK_DIR = os.path.dirname(os.path.abspath(__file__))


def log_line(text):
    """One line in netlet's log (newlines escaped so that it stays one)."""
    sys.stderr.write(text.replace("\n", "\\n") + "\n")
    sys.stderr.flush()


def _own_frame(filename):
    if filename.startswith(_SDK_DIR) or filename.startswith("/python/"):
        return False
    if "/lib/python3" in filename:
        return False
    return not filename.startswith("<frozen")


def describe(exc):
    """``Traceback: server.py:30 in main > server.py:12 in data_received: ValueError: boom``."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if _own_frame(f.filename)]
    shown = (own or list(frames))[-8:]
    where = " > ".join(f"{_short(f.filename)}:{f.lineno} in {f.name}" for f in shown)
    head = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    text = f"Traceback (most recent call last): {where}: {head}" if where else head
    return text.replace("\n", "\\n")


def _short(filename):
    # Folders componentize-py mounted the program from are /0, /1, ...: not the author's.
    parts = filename.split("/")
    if len(parts) > 2 and parts[0] == "" and parts[1].isdigit():
        return "/".join(parts[2:])
    return filename


def fatal(exc):
    """An exception escaped handler code: one line, then the instance stops."""
    global dead, _init_error
    if dead:
        return
    dead = True
    line = describe(exc)
    if _in_init:
        _init_error = line
        return
    log_line(line)
    _trap()


def _trap():
    """Stops the instance as a trap does. A call on resource handle 0, which the
    component model never gives out, is a trap the host recognises as this SDK's (and
    the JavaScript SDK's): it logs that the handler stopped after an uncaught exception."""
    from wit_world.imports import net

    bogus = net.Socket.__new__(net.Socket)
    bogus.handle = 0
    bogus.id()
    raise SystemExit("netlet: the instance should have stopped")


def _imports(tree):
    """Absolute module names the program's code imports, wherever it does."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


# Imported at build time for every program: what asyncio programs commonly use and
# what the SDK's own error lines need.
_ALWAYS = (
    "asyncio",
    "traceback",
    "linecache",
    "encodings.utf_8",
    "encodings.ascii",
    "encodings.latin_1",
)


def prepare(filename):
    """At build time: compile the program and import what it imports."""
    global _program
    from . import loop  # noqa: F401 (in the snapshot: nothing is imported later)

    path = None
    for folder in sys.path:
        candidate = os.path.join(folder, filename)
        if os.path.isfile(candidate):
            path = candidate
            break
    if path is None:
        raise FileNotFoundError(f"netlet: {filename} is not on the build's path")
    with open(path, "rb") as f:
        source = f.read()
    tree = ast.parse(source, filename)
    code = compile(tree, filename, "exec")
    for name in _ALWAYS + tuple(_imports(tree)):
        try:
            importlib.import_module(name)
        except Exception:
            # `from pkg import function` names no module; a module this Python lacks
            # fails at run time where the program imports it, as CPython would.
            pass
    _program = (filename, code)


def _install(loop):
    """``asyncio.run``, ``new_event_loop`` and ``get_event_loop`` give the instance's loop."""
    def run(main, *, debug=None, loop_factory=None):
        if not asyncio.iscoroutine(main):
            raise ValueError(f"a coroutine was expected, got {main!r}")
        return loop.run_until_complete(loop.create_task(main))

    asyncio.run = run
    asyncio.runners.run = run
    asyncio.new_event_loop = lambda: loop
    asyncio.events.new_event_loop = asyncio.new_event_loop
    asyncio.set_event_loop(loop)


class Handler(wit_world.exports.Handler):
    """The WIT ``handler`` export."""

    def init(self, args):
        global _in_init, _loop
        from .loop import NetletEventLoop, _Detach

        _in_init = True
        try:
            try:
                _loop = NetletEventLoop()
                _install(_loop)
            except BaseException as exc:
                fatal(exc)
                raise Err(_init_error) from None
            filename, code = _program
            sys.argv = [filename, *args]
            # Each print() is a log line when it is written, as on a terminal.
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.reconfigure(line_buffering=True)
                except (AttributeError, ValueError):
                    pass
            main = types.ModuleType("__main__")
            main.__file__ = filename
            main.__builtins__ = builtins
            sys.modules["__main__"] = main
            try:
                exec(code, main.__dict__)
            except _Detach:
                pass
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    fatal(exc)
            except BaseException as exc:
                fatal(exc)
            if not dead:
                _loop._drive()
        finally:
            _in_init = False
        if _init_error is not None:
            raise Err(_init_error)

    def handle(self, events):
        if dead:
            return
        loop = _loop
        # Protocol callbacks run inside the loop, as asyncio runs them
        # (asyncio.get_running_loop() works there).
        _set_running_loop(loop)
        try:
            for ev in events:
                try:
                    loop._dispatch(ev)
                except BaseException as exc:
                    fatal(exc)
                loop._drive()
                if dead:
                    return
        finally:
            _set_running_loop(None)
