/**
 * Runs one Python program that drives several kazoo clients at once, each
 * connected to a server of its choice, with threads for the recipes that
 * need concurrency. The multi-client counterpart of `runKazoo()`.
 *
 * @module
 */

import { dedent, type KazooOptions, runKazooProgram } from "./kazoo.ts";

/**
 * Runs `body` with kazoo and resolves with the value it assigned to
 * `result`.
 *
 * `servers` names the servers the body may connect to, e.g.
 * `{ a: "127.0.0.1:2181", b: "127.0.0.1:2182" }`. `body` is Python run
 * inside a function (common indentation removed). Besides every name of
 * `kazoo.exceptions` and `kazoo.security`, `TreeCache` and `TreeEvent`,
 * `threading` and `time`, it may use:
 * - `connect(server, **kwargs)`: a started `KazooClient` on `servers[server]`
 *   (or on `server` itself, a hosts string, when it is not a name); extra
 *   arguments go to `KazooClient`. Every client is stopped at the end;
 * - `spawn(fn, *args)`: runs `fn(*args)` in a daemon thread, returns a task;
 * - `join_all(tasks, timeout)`: waits for the tasks, at most `timeout`
 *   seconds in all, and returns their return values; raises a task's
 *   exception as soon as one fails (the others are left running), or
 *   `TimeoutError` naming the tasks still running;
 * - `wait_until(predicate, timeout=10, what="...")`: polls `predicate()`
 *   until it is truthy (and returns that value) or raises `TimeoutError`;
 * - `b(s)`: `s.encode()`.
 *
 * Unlike `runKazoo()`, an exception escaping the body is an error: the
 * returned promise rejects with the Python traceback and the tail of
 * Python's stderr (where kazoo logs warnings), as it does when Python runs
 * past `timeoutMs` (default 30 000).
 */
export function runKazooClients(
  servers: Record<string, string>,
  body: string,
  options: KazooOptions = {},
): Promise<unknown> {
  return runKazooProgram(
    kazooClientsProgram(servers, body),
    `kazoo clients against ${JSON.stringify(servers)}`,
    options,
  );
}

/** The whole Python program for {@linkcode runKazooClients}. */
export function kazooClientsProgram(
  servers: Record<string, string>,
  body: string,
): string {
  const indented = dedent(body)
    .split("\n")
    .map((line) => line.trim() === "" ? "" : "    " + line)
    .join("\n");
  return `
import json
import logging
import os
import sys
import threading
import time
import traceback

from kazoo.client import KazooClient
from kazoo.exceptions import *
from kazoo.recipe.cache import TreeCache, TreeEvent
from kazoo.security import *

logging.basicConfig(
    level=logging.WARNING, stream=sys.stderr,
    format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")

SERVERS = ${JSON.stringify(servers)}
_clients = []


def b(s):
    return s.encode()


def connect(server, **kwargs):
    kwargs.setdefault("timeout", 10)
    zk = KazooClient(hosts=SERVERS.get(server, server), **kwargs)
    zk.start(timeout=10)
    _clients.append(zk)
    return zk


class _Task(object):
    def __init__(self, fn, args):
        self.name = getattr(fn, "__name__", "task") + repr(args)[:60]
        self.value = None
        self.error = None
        self.thread = threading.Thread(
            target=self._run, args=(fn, args), name=self.name, daemon=True)

    def _run(self, fn, args):
        try:
            self.value = fn(*args)
        except BaseException as error:
            traceback.print_exc()
            self.error = error


def spawn(fn, *args):
    task = _Task(fn, args)
    task.thread.start()
    return task


def join_all(tasks, timeout):
    deadline = time.monotonic() + timeout
    while True:
        for task in tasks:
            if task.error is not None:
                raise task.error
        running = [task.name for task in tasks if task.thread.is_alive()]
        if not running:
            return [task.value for task in tasks]
        if time.monotonic() > deadline:
            raise TimeoutError("still running after %ss: %s" % (timeout, running))
        time.sleep(0.01)


def wait_until(predicate, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.02)


def _json_default(value):
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value)
    raise TypeError("not JSON serialisable: %r" % (value,))


def _body():
    result = None
${indented}
    return result


def _stop_all():
    def stop(zk):
        try:
            zk.stop()
            zk.close()
        except Exception:
            pass
    threads = [threading.Thread(target=stop, args=(zk,), daemon=True) for zk in _clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)


code = 0
try:
    output = json.dumps(_body(), default=_json_default)
except BaseException:
    traceback.print_exc()
    output = None
    code = 1
_stop_all()
if output is not None:
    sys.stdout.write("\\n" + output + "\\n")
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
`;
}
