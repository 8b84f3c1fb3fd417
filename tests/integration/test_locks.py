"""Lock order (docs/ARCHITECTURE.md "Locks and threads"): SIGHUP reloads take
cfg_lock for writing while POSTs and the spool collector ingest. cfg_lock is a
writer-preferring rwlock, so a thread that took it for reading and then
waits for it again (or for ingest_lock, held by a thread that waits for
cfg_lock) behind a waiting reload deadlocks the daemon. 200 reloads with 4
POST threads and a spool feeder: every reload must finish and every POST be
answered 202; a hang fails the test by its bounded waits instead of hanging
it. The last value each thread posted must be the value in force."""
import http.client
import os
import signal
import threading
import time
import unittest

from harness import DaemonTest, wait_for

TOKEN = "lock-order-token"
RELOADS = 200
SERIES = [("xiangtan-etdz", "fixed_asset_investment"), ("xiangtan-hitech", "fixed_asset_investment"),
          ("liuyang-etdz", "tax_revenue"), ("xiangtan-etdz", "industrial_investment")]
RELOAD_TIMEOUT = 20.0   # one reload takes milliseconds; this much is a deadlock


class LockOrderTest(DaemonTest):
    def test_reloads_with_concurrent_posts_and_spool(self):
        d = self.daemon(token=TOKEN).start()
        stop = threading.Event()
        errors, last = [], {}

        def poster(k):
            park, ind = SERIES[k]
            conn = None
            n = 0
            while not stop.is_set() and not errors:
                n += 1
                body = ("park,indicator,period,value,unit\n%s,%s,2021-08,%d.5,亿元\n"
                        % (park, ind, n)).encode("utf-8")
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=RELOAD_TIMEOUT)
                    conn.request("POST", "/api/v1/observations", body,
                                 {"Authorization": "Bearer " + TOKEN, "Content-Type": "text/csv"})
                    r = conn.getresponse()
                    text = r.read()
                    if r.status != 202:
                        errors.append("POST %d of thread %d: %d %s" % (n, k, r.status, text[:200]))
                        return
                    last[k] = n + 0.5
                except OSError as e:   # a timeout included: the daemon stopped answering
                    errors.append("POST %d of thread %d: %s" % (n, k, e))
                    return
            if conn is not None:
                conn.close()

        def spooler():
            i = 0
            while not stop.is_set() and not errors:
                i += 1
                d.drop("feed-%04d.csv" % i, ("park,indicator,period,value,unit\n"
                                               "liuyang-etdz,fixed_asset_investment,2021-07,%d,亿元\n"
                                               % i).encode("utf-8"), wait=False)
                time.sleep(0.01)

        threads = [threading.Thread(target=poster, args=(k,)) for k in range(len(SERIES))]
        threads.append(threading.Thread(target=spooler))
        for t in threads:
            t.start()
        try:
            for i in range(RELOADS):
                d.proc.send_signal(signal.SIGHUP)
                try:
                    wait_for(lambda: d.logtext().count("configuration reloaded") > i or errors,
                             RELOAD_TIMEOUT, "reload %d of %d" % (i + 1, RELOADS))
                except AssertionError as e:
                    self.fail("%s: the daemon is deadlocked (reload against ingest); POST errors: %s"
                              % (e, errors[:3]))
                if errors:
                    break
        finally:
            stop.set()
            for t in threads:
                t.join(RELOAD_TIMEOUT + 5)
        self.assertEqual(errors, [])
        self.assertTrue(all(not t.is_alive() for t in threads), "a feeder is stuck")
        self.assertEqual(d.logtext().count("configuration reloaded"), RELOADS)
        for k, (park, ind) in enumerate(SERIES):
            self.assertIn(k, last)
            self.assertEqual(d.series(park, ind)["value"], last[k], (park, ind))
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
