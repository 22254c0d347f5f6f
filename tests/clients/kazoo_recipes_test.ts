/**
 * kazoo's recipes (Debian's python3-kazoo 2.8) with two servers on one etcd
 * and one key prefix: every recipe's clients are spread over both servers,
 * so each one only works if a change made through one server is seen,
 * ordered and notified through the other.
 */

import assert from "node:assert/strict";
import { startStack, startZetcd } from "../_util/zetcd.ts";
import { runKazooClients } from "../_util/kazoo_clients.ts";

const PREFIX = "/recipes/";

Deno.test({
  name: "kazoo recipes work with their clients spread over two servers on one etcd",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  await using stack = await startStack({ prefix: PREFIX });
  const second = await startZetcd(stack.etcd, { prefix: PREFIX });
  const servers = { a: stack.address, b: second.address };
  const kazoo = (body: string) => runKazooClients(servers, body, { timeoutMs: 40_000 });
  try {
    await t.step("kazoo Lock excludes a contender connected to the other server", async () => {
      const result = await kazoo(`
        holder = connect("a").Lock("/lock-one", "holder")
        other_zk = connect("b")
        other = other_zk.Lock("/lock-one", "other")
        out = {"held": holder.acquire(timeout=5)}
        out["other_nonblocking"] = other.acquire(blocking=False)
        try:
            other.acquire(timeout=0.5)
            out["other_timeout"] = "acquired"
        except LockTimeout:
            out["other_timeout"] = "LockTimeout"
        out["contenders"] = other_zk.Lock("/lock-one").contenders()
        holder.release()
        out["other_after_release"] = other.acquire(timeout=5)
        out["contenders_after"] = other_zk.Lock("/lock-one").contenders()
        other.release()
        result = out
      `);
      assert.deepEqual(result, {
        held: true,
        other_nonblocking: false,
        other_timeout: "LockTimeout",
        contenders: ["holder"],
        other_after_release: true,
        contenders_after: ["other"],
      });
    });

    await t.step(
      "kazoo Lock gives contenders on both servers the critical section one at a time",
      async () => {
        const result = await kazoo(`
        ROUNDS = 5
        clients = [connect(s) for s in ("a", "b", "a", "b", "a", "b")]
        clients[0].create("/lock-counter", b("0"))
        state = {"inside": 0, "max_inside": 0, "entries": 0}
        guard = threading.Lock()

        def contender(zk, name):
            lock = zk.Lock("/lock", name)
            for _ in range(ROUNDS):
                lock.acquire(timeout=20)
                try:
                    with guard:
                        state["inside"] += 1
                        state["entries"] += 1
                        state["max_inside"] = max(state["max_inside"], state["inside"])
                    # A read-modify-write with no version check: lost updates
                    # if two holders overlap or a read is stale.
                    data, _ = zk.get("/lock-counter")
                    time.sleep(0.005)
                    zk.set("/lock-counter", b(str(int(data) + 1)))
                    with guard:
                        state["inside"] -= 1
                finally:
                    lock.release()

        join_all([spawn(contender, zk, "c%d" % i) for i, zk in enumerate(clients)], 30)
        # Another client's last write reaches this one's view after sync().
        for zk in clients[:2]:
            zk.sync("/")
        result = {
            "max_inside": state["max_inside"],
            "entries": state["entries"],
            "counter_via_a": int(clients[0].get("/lock-counter")[0]),
            "counter_via_b": int(clients[1].get("/lock-counter")[0]),
            "lock_children_left": clients[1].get_children("/lock"),
        }
      `);
        assert.deepEqual(result, {
          max_inside: 1,
          entries: 30,
          counter_via_a: 30,
          counter_via_b: 30,
          lock_children_left: [],
        });
      },
    );

    await t.step(
      "kazoo Election elects exactly one leader and a successor when the leader returns or its session ends",
      async () => {
        const result = await kazoo(`
        ids = ["a0", "b0", "a1", "b1"]
        clients = {i: connect(i[0]) for i in ids}
        observer = connect("b")
        guard = threading.Lock()
        state = {"current": 0, "max_current": 0}
        leaders = []
        deposed = set()
        release = {i: threading.Event() for i in ids}

        def lead(ident):
            with guard:
                leaders.append(ident)
                state["current"] += 1
                state["max_current"] = max(state["max_current"], state["current"])
            release[ident].wait(20)
            with guard:
                if ident not in deposed:
                    state["current"] -= 1

        def contend(ident):
            try:
                clients[ident].Election("/election", ident).run(lead, ident)
            except ConnectionClosedError:
                # Its client was stopped while it led: leaving the election
                # cannot delete a node that is already gone.
                assert ident in deposed

        def contenders():
            observer.sync("/election")  # others' changes reach its view after sync()
            return observer.Election("/election").contenders()

        tasks = [spawn(contend, i) for i in ids]
        wait_until(lambda: len(leaders) >= 1, what="a first leader")
        wait_until(lambda: len(contenders()) == 4, what="four contenders")
        time.sleep(0.3)
        out = {"leaders_at_first": len(leaders)}
        first = leaders[0]
        out["first_is_head_of_contenders"] = contenders()[0] == first

        # The leader returns: another is elected.
        release[first].set()
        wait_until(lambda: len(leaders) >= 2, what="a second leader")
        second_leader = leaders[1]
        out["contenders_after_first_left"] = len(contenders())

        # The leader's session ends (its client stops): another is elected.
        with guard:
            deposed.add(second_leader)
            state["current"] -= 1
        clients[second_leader].stop()
        wait_until(lambda: len(leaders) >= 3, what="a third leader")
        out["contenders_after_second_closed"] = len(contenders())
        release[second_leader].set()

        release[leaders[2]].set()
        wait_until(lambda: len(leaders) >= 4, what="a fourth leader")
        release[leaders[3]].set()
        join_all(tasks, 20)
        out["distinct_leaders"] = len(set(leaders))
        out["max_concurrent_leaders"] = state["max_current"]
        out["contenders_at_end"] = contenders()
        result = out
      `);
        assert.deepEqual(result, {
          leaders_at_first: 1,
          first_is_head_of_contenders: true,
          contenders_after_first_left: 3,
          contenders_after_second_closed: 2,
          distinct_leaders: 4,
          max_concurrent_leaders: 1,
          contenders_at_end: [],
        });
      },
    );

    await t.step("kazoo Barrier holds waiters on both servers until it is removed", async () => {
      const result = await kazoo(`
        owner = connect("a")
        barrier = owner.Barrier("/barrier")
        out = {"wait_without_barrier": connect("b").Barrier("/barrier").wait(timeout=1)}
        barrier.create()

        def synced_barrier(server):
            # The owner's create reaches another client's view after sync().
            zk = connect(server)
            zk.sync("/barrier")
            return zk.Barrier("/barrier")

        out["short_wait"] = synced_barrier("b").wait(timeout=0.3)
        waiters = [synced_barrier(s) for s in ("b", "a", "b")]
        tasks = [spawn(w.wait, 15) for w in waiters]
        time.sleep(0.5)
        out["released_early"] = [not task.thread.is_alive() for task in tasks]
        out["removed"] = barrier.remove()
        out["waits"] = join_all(tasks, 15)
        out["removed_again"] = barrier.remove()
        result = out
      `);
      assert.deepEqual(result, {
        wait_without_barrier: true,
        short_wait: false,
        released_early: [false, false, false],
        removed: true,
        waits: [true, true, true],
        removed_again: false,
      });
    });

    await t.step(
      "kazoo DoubleBarrier lets members on both servers in together and out together",
      async () => {
        const result = await kazoo(`
        N = 4
        members = [connect(s).DoubleBarrier("/double", N, "m%d" % i)
                   for i, s in enumerate(("a", "b", "a", "b"))]
        guard = threading.Lock()
        counts = {"entering": 0, "leaving": 0}
        seen = {"entering_when_entered": [], "leaving_when_left": [], "participating": []}

        def member(i, barrier):
            time.sleep(0.15 * i)
            with guard:
                counts["entering"] += 1
            barrier.enter()
            with guard:
                seen["entering_when_entered"].append(counts["entering"])
                seen["participating"].append(barrier.participating)
            time.sleep(0.15 * (N - i))
            with guard:
                counts["leaving"] += 1
            barrier.leave()
            with guard:
                seen["leaving_when_left"].append(counts["leaving"])

        join_all([spawn(member, i, m) for i, m in enumerate(members)], 25)
        members[0].client.sync("/double")  # the others' leaves, after sync()
        seen["children_left"] = members[0].client.get_children("/double")
        result = seen
      `);
        assert.deepEqual(result, {
          entering_when_entered: [4, 4, 4, 4],
          leaving_when_left: [4, 4, 4, 4],
          participating: [true, true, true, true],
          children_left: [],
        });
      },
    );

    await t.step("kazoo Counter sums concurrent increments made through both servers", async () => {
      const result = await kazoo(`
        INCREMENTS = 25
        fast_retry = {"delay": 0.005, "backoff": 1.5, "max_delay": 0.05, "max_tries": -1}
        clients = [connect(s, command_retry=fast_retry) for s in ("a", "b", "a", "b")]

        def increment(zk):
            counter = zk.Counter("/counter")
            for _ in range(INCREMENTS):
                counter += 1

        join_all([spawn(increment, zk) for zk in clients], 30)
        # Another client's last write reaches this one's view after sync().
        for zk in clients[:2]:
            zk.sync("/")
        result = {
            "via_a": clients[0].Counter("/counter").value,
            "via_b": clients[1].Counter("/counter").value,
            "version": clients[1].exists("/counter").version,
        }
      `);
      assert.deepEqual(result, { via_a: 100, via_b: 100, version: 100 });
    });

    await t.step(
      "kazoo Queue hands a consumer on the other server items by priority, then FIFO",
      async () => {
        const result = await kazoo(`
        producer = connect("a").Queue("/queue-order")
        for i in range(3):
            producer.put(b("low%d" % i), priority=200)
        for i in range(3):
            producer.put(b("normal%d" % i))
        for i in range(2):
            producer.put(b("high%d" % i), priority=5)
        producer.put(b("normal3"))
        consumer_zk = connect("b")
        consumer_zk.sync("/queue-order")  # the producer's puts, after sync()
        consumer = consumer_zk.Queue("/queue-order")
        out = {"length": len(consumer), "items": []}
        while True:
            item = consumer.get()
            if item is None:
                break
            out["items"].append(item)
        producer.client.sync("/queue-order")  # the consumer's gets, after sync()
        out["length_after"] = len(producer)
        result = out
      `);
        assert.deepEqual(result, {
          length: 9,
          items: [
            "high0",
            "high1",
            "normal0",
            "normal1",
            "normal2",
            "normal3",
            "low0",
            "low1",
            "low2",
          ],
          length_after: 0,
        });
      },
    );

    await t.step(
      "kazoo Queue gives each item to exactly one of the consumers on both servers",
      async () => {
        const result = await kazoo(`
        ITEMS = 30
        guard = threading.Lock()
        consumed = []
        produced = []

        def produce(zk, name):
            queue = zk.Queue("/queue")
            for i in range(ITEMS):
                item = "%s-%02d" % (name, i)
                queue.put(b(item))
                with guard:
                    produced.append(item)

        def consume(zk):
            queue = zk.Queue("/queue")
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline:
                with guard:
                    if len(consumed) >= 2 * ITEMS:
                        return
                item = queue.get()
                if item is None:
                    time.sleep(0.01)
                    continue
                with guard:
                    consumed.append(item.decode())

        tasks = [spawn(produce, connect("a"), "pa"), spawn(produce, connect("b"), "pb")]
        tasks += [spawn(consume, connect(s)) for s in ("a", "b", "a", "b")]
        join_all(tasks, 30)
        observer = connect("b")
        observer.sync("/queue")  # the consumers' last deletes, after sync()
        result = {
            "consumed_count": len(consumed),
            "duplicates": sorted(set(i for i in consumed if consumed.count(i) > 1)),
            "same_items": sorted(consumed) == sorted(produced),
            "left": observer.get_children("/queue"),
        }
      `);
        assert.deepEqual(result, {
          consumed_count: 60,
          duplicates: [],
          same_items: true,
          left: [],
        });
      },
    );

    await t.step(
      "kazoo LockingQueue orders items, locks them against the other server and releases them to it",
      async () => {
        const result = await kazoo(`
        zk_a = connect("a")
        zk_b = connect("b")
        producer = zk_a.LockingQueue("/lqueue-order")
        producer.put(b("normal0"))
        producer.put_all([b("high0"), b("high1"), b("high2")], priority=10)
        zk_b.LockingQueue("/lqueue-order").put(b("normal1"))
        out = {"length": len(zk_b.LockingQueue("/lqueue-order"))}

        # A consumer on A locks the first item; one on B skips it.
        on_a = zk_a.LockingQueue("/lqueue-order")
        on_b = zk_b.LockingQueue("/lqueue-order")
        out["a_gets"] = on_a.get(timeout=5)
        out["b_gets"] = on_b.get(timeout=5)
        out["a_holds_lock"] = on_a.holds_lock()
        # A releases its item without consuming it: it is B's next item.
        out["b_consumes"] = on_b.consume()
        out["a_releases"] = on_a.release()
        zk_b.sync("/lqueue-order")  # A's release reaches B's view after sync()
        out["b_gets_released"] = on_b.get(timeout=5)
        out["b_consumes_released"] = on_b.consume()

        # The rest, in order, through B.
        rest = []
        while True:
            item = on_b.get(timeout=0.5)
            if item is None:
                break
            rest.append(item)
            on_b.consume()
        out["rest"] = rest
        zk_a.sync("/")  # B's consumes reach A's view after sync()
        out["entries_left"] = zk_a.get_children("/lqueue-order/entries")
        out["locks_left"] = zk_a.get_children("/lqueue-order/taken")
        result = out
      `);
        assert.deepEqual(result, {
          length: 5,
          a_gets: "high0",
          b_gets: "high1",
          a_holds_lock: true,
          b_consumes: true,
          a_releases: true,
          b_gets_released: "high0",
          b_consumes_released: true,
          rest: ["high2", "normal0", "normal1"],
          entries_left: [],
          locks_left: [],
        });
      },
    );

    await t.step(
      "kazoo LockingQueue gives each item to exactly one of the consumers on both servers",
      async () => {
        const result = await kazoo(`
        ITEMS = 20
        guard = threading.Lock()
        consumed = []
        produced = []

        def produce(zk, name):
            queue = zk.LockingQueue("/lqueue")
            for i in range(ITEMS):
                item = "%s-%02d" % (name, i)
                queue.put(b(item))
                with guard:
                    produced.append(item)

        def consume(zk):
            queue = zk.LockingQueue("/lqueue")
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline:
                with guard:
                    if len(consumed) >= 2 * ITEMS:
                        return
                item = queue.get(timeout=0.3)
                if item is None:
                    continue
                if not queue.consume():
                    raise AssertionError("could not consume %r" % item)
                with guard:
                    consumed.append(item.decode())

        tasks = [spawn(produce, connect("a"), "pa"), spawn(produce, connect("b"), "pb")]
        tasks += [spawn(consume, connect(s)) for s in ("a", "b", "a", "b")]
        join_all(tasks, 30)
        observer = connect("a")
        observer.sync("/lqueue")  # the consumers' last deletes, after sync()
        result = {
            "consumed_count": len(consumed),
            "duplicates": sorted(set(i for i in consumed if consumed.count(i) > 1)),
            "same_items": sorted(consumed) == sorted(produced),
            "entries_left": observer.get_children("/lqueue/entries"),
            "locks_left": observer.get_children("/lqueue/taken"),
        }
      `);
        assert.deepEqual(result, {
          consumed_count: 40,
          duplicates: [],
          same_items: true,
          entries_left: [],
          locks_left: [],
        });
      },
    );

    await t.step(
      "kazoo Party and ShallowParty show members joined through the other server",
      async () => {
        const result = await kazoo(`
        out = {}
        for kind in ("Party", "ShallowParty"):
            path = "/" + kind.lower()
            on_a1 = connect("a")
            a1 = getattr(on_a1, kind)(path, "a1")
            a2_client = connect("a")
            a2 = getattr(a2_client, kind)(path, "a2")
            b1 = getattr(connect("b"), kind)(path, "b1")
            view_client = connect("b")
            view = getattr(view_client, kind)(path)
            # ZooKeeper promises one client another client's change only
            # after sync(), as in an ensemble: the view syncs before it looks.
            for member in (a1, a2, b1):
                member.join()
            view_client.sync(path)
            seen = {"joined": sorted(view), "len": len(view)}
            a1.leave()
            view_client.sync(path)
            seen["after_leave"] = sorted(view)
            a2_client.stop()
            view_client.sync(path)
            seen["after_session_end"] = sorted(view)
            seen["len_at_end"] = len(view)
            out[kind] = seen
        result = out
      `);
        const expected = {
          joined: ["a1", "a2", "b1"],
          len: 3,
          after_leave: ["a2", "b1"],
          after_session_end: ["b1"],
          len_at_end: 1,
        };
        assert.deepEqual(result, { Party: expected, ShallowParty: expected });
      },
    );

    await t.step("kazoo DataWatch sees each change made through the other server", async () => {
      const result = await kazoo(`
        writer = connect("a")
        watcher = connect("b")
        calls = []

        @watcher.DataWatch("/watched")
        def on_change(data, stat):
            calls.append(None if stat is None else [data.decode(), stat.version])

        def expect(n):
            wait_until(lambda: len(calls) >= n, what="DataWatch call %d" % n)

        expect(1)
        writer.create("/watched", b("first"))
        expect(2)
        writer.set("/watched", b("second"))
        expect(3)
        writer.set("/watched", b("third"))
        expect(4)
        writer.delete("/watched")
        expect(5)
        writer.create("/watched", b("again"))
        expect(6)
        time.sleep(0.3)
        result = calls
      `);
      assert.deepEqual(result, [
        null,
        ["first", 0],
        ["second", 1],
        ["third", 2],
        null,
        ["again", 0],
      ]);
    });

    await t.step(
      "kazoo ChildrenWatch sees each child change made through the other server",
      async () => {
        const result = await kazoo(`
        writer = connect("a")
        watcher = connect("b")
        writer.create("/kids")
        watcher.sync("/kids")  # the writer's create reaches its view after sync()
        calls = []

        @watcher.ChildrenWatch("/kids")
        def on_children(children):
            calls.append(sorted(children))

        def expect(n):
            wait_until(lambda: len(calls) >= n, what="ChildrenWatch call %d" % n)

        expect(1)
        writer.create("/kids/x")
        expect(2)
        writer.create("/kids/y", ephemeral=True)
        expect(3)
        writer.set("/kids/x", b("data changes are not child changes"))
        writer.delete("/kids/x")
        expect(4)
        seq = writer.create("/kids/s-", sequence=True)
        expect(5)
        time.sleep(0.3)
        result = {"calls": calls, "seq": seq}
      `) as { calls: string[][]; seq: string };
        assert.match(result.seq, /^\/kids\/s-\d{10}$/);
        const seq = result.seq.slice("/kids/".length);
        assert.deepEqual(result.calls, [[], ["x"], ["x", "y"], ["y"], [seq, "y"].sort()]);
      },
    );

    await t.step(
      "kazoo TreeCache mirrors a subtree built and pruned through the other server",
      async () => {
        const result = await kazoo(`
        writer = connect("a")
        reader = connect("b")
        writer.create("/tree/pre", b("p"), makepath=True)
        reader.sync("/tree")  # the writer's creates reach its view after sync()
        cache = TreeCache(reader, "/tree")
        events = []
        names = {TreeEvent.NODE_ADDED: "added", TreeEvent.NODE_UPDATED: "updated",
                 TreeEvent.NODE_REMOVED: "removed", TreeEvent.INITIALIZED: "initialized"}

        def listener(event):
            if event.event_type in names:
                path = event.event_data.path if event.event_data else None
                events.append([names[event.event_type], path])

        cache.listen(listener)
        cache.start()
        wait_until(lambda: ["initialized", None] in events, what="INITIALIZED")
        out = {"initial": sorted(cache.get_children("/tree"))}

        writer.create("/tree/x/y", b("deep"), makepath=True)
        writer.create("/tree/z", b("zed"))
        wait_until(lambda: cache.get_data("/tree/x/y") is not None and
                   cache.get_data("/tree/z") is not None, what="the new nodes")
        writer.set("/tree/z", b("zed2"))
        wait_until(lambda: cache.get_data("/tree/z").data == b"zed2", what="the update")
        out["built"] = {
            "children": sorted(cache.get_children("/tree")),
            "x_children": sorted(cache.get_children("/tree/x")),
            "y": cache.get_data("/tree/x/y").data,
            "z": cache.get_data("/tree/z").data,
            "z_version": cache.get_data("/tree/z").stat.version,
        }

        writer.delete("/tree/x", recursive=True)
        writer.delete("/tree/pre")
        wait_until(lambda: cache.get_children("/tree") == frozenset(["z"]), what="the deletes")
        time.sleep(0.3)
        out["pruned"] = {
            "children": sorted(cache.get_children("/tree")),
            "x": cache.get_data("/tree/x"),
            "y": cache.get_data("/tree/x/y"),
        }
        out["events"] = sorted(e for e in events if e[0] != "initialized")
        cache.close()
        result = out
      `);
        assert.deepEqual(result, {
          initial: ["pre"],
          built: {
            children: ["pre", "x", "z"],
            x_children: ["y"],
            y: "deep",
            z: "zed2",
            z_version: 1,
          },
          pruned: { children: ["z"], x: null, y: null },
          events: [
            ["added", "/tree"],
            ["added", "/tree/pre"],
            ["added", "/tree/x"],
            ["added", "/tree/x/y"],
            ["added", "/tree/z"],
            ["removed", "/tree/pre"],
            ["removed", "/tree/x"],
            ["removed", "/tree/x/y"],
            ["updated", "/tree/z"],
          ],
        });
      },
    );
  } finally {
    await second.close();
  }
});
