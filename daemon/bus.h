/*
 * bus.h — the alert bus of README, Alerts: a ZeroMQ PUB socket, the only module that
 * includes zmq.h. It is a transport only: another module decides what to
 * publish and formats the JSON; the bus queues it and sends it.
 *
 * ZeroMQ sockets are not thread-safe, so one bus thread owns the PUB socket
 * (and, with CURVE client authentication, the ZAP handler). Any thread hands
 * messages over through bus_publish*(), which appends to a bounded,
 * mutex-protected queue and wakes the bus thread through an eventfd; it never
 * blocks on the network. Each message is sent as two frames: the topic
 * ("alert.<park>.<indicator>", "hb"), then the body. A PUB socket never blocks
 * either: past the high-water mark of one subscriber (bus_options.hwm) that
 * subscriber loses messages — and only that one — which it sees as a gap in
 * `seq`.
 *
 * Heartbeats: every heartbeat_s seconds the bus thread publishes topic "hb",
 * body {"seq":<last alert seq>,"time":"<RFC 3339 local time with offset>"}.
 * The seq is the greatest one given to bus_publish_alert() so far, queued or
 * dropped (or bus_options.seq before the first), and the bus thread sends
 * every message queued before it first: a heartbeat never overtakes the alert
 * it announces, and an alert lost to a full queue still shows as a gap. The
 * time comes from bus_options.now_fn, so the daemon's fixed clock (--now)
 * applies.
 *
 * CURVE (optional, for buses that leave the machine). File formats:
 *   curve_secret_key_file: the server's secret key, 40 characters of Z85 (as
 *     printed by zmq_curve_keypair / `curve_keygen`) on the first line;
 *     anything after the first line is ignored. Keep it mode 0600 (a
 *     group/world-readable file is used but warned about).
 *   curve_clients_dir: one file per authorised subscriber, named *.key (other
 *     names are ignored), whose first line is that subscriber's public key, 40
 *     characters of Z85. Leading/trailing blanks on that line are ignored; a
 *     *.key file that holds anything else makes bus_open fail. An empty
 *     directory authorises nobody.
 * Subscribers need the server's public key (bus_curve_public_key()).
 *
 * Limits (the PUB port is open to anyone who can reach it): an inbound frame
 * larger than BUS_MAX_INBOUND bytes ends its connection (a subscriber only
 * sends subscriptions); a connection that has not finished the ZMTP handshake
 * within BUS_HANDSHAKE_MS is closed; and at most max_connections TCP
 * connections are kept: past it each new one is closed as soon as it is
 * accepted (logged, and the log line is rate-limited), so the bus can never
 * take the descriptors the journal, the spool and HTTP need. libzmq 4.3 has
 * no such limit of its own: the bus thread counts the connections from the
 * socket monitor's ACCEPTED and DISCONNECTED events and shuts down the
 * socket of one past the limit, which libzmq then closes.
 * Without curve_clients_dir any client that knows the server's public key may
 * subscribe (the traffic is still encrypted).
 */
#ifndef PP_BUS_H
#define PP_BUS_H

#include <stddef.h>
#include <stdint.h>

typedef struct bus bus;

/* Formats the current time as RFC 3339 local time with offset
 * ("2024-09-15T10:02:03+08:00") into buf (len >= 32) and returns buf, or NULL
 * on failure. Called from the bus thread: it must be thread-safe. */
typedef const char *(*bus_now_fn)(char *buf, size_t len, void *ud);

enum {
    BUS_DEFAULT_HEARTBEAT_S = 5,
    BUS_DEFAULT_HWM = 1000,
    BUS_DEFAULT_QUEUE_MAX = 100000,
    BUS_MAX_TOPIC = 255,           /* bytes of a topic */
    BUS_MAX_BODY = 1024 * 1024,    /* bytes of a body */
    BUS_MAX_CLIENT_KEYS = 10000,   /* *.key files read from curve_clients_dir */
    BUS_MAX_INBOUND = 4096,        /* bytes of a frame from a subscriber (ZMQ_MAXMSGSIZE) */
    BUS_HANDSHAKE_MS = 5000,       /* ZMQ_HANDSHAKE_IVL */
    BUS_DEFAULT_MAX_CONNECTIONS = 256,
};

typedef struct bus_options {
    const char *endpoint;              /* e.g. "tcp://127.0.0.1:5556"; "tcp://127.0.0.1:*" binds
                                          any free port (see bus_endpoint) */
    int heartbeat_s;                   /* seconds between heartbeats; <= 0: 5 */
    int hwm;                           /* ZMQ_SNDHWM, messages per subscriber; <= 0: 1000 */
    const char *curve_secret_key_file; /* NULL: no CURVE */
    const char *curve_clients_dir;     /* NULL: no client authentication; needs CURVE */
    /* --- additions beyond the config keys --- */
    bus_now_fn now_fn;                 /* clock for heartbeats; NULL: the system's local time */
    void *now_ud;                      /* passed to now_fn */
    uint64_t seq;                      /* last alert seq at start (heartbeats before the
                                          first bus_publish_alert carry it) */
    int queue_max;                     /* messages waiting for the bus thread; <= 0: 100000 */
    int max_connections;               /* TCP connections at once; <= 0: 256 */
    int reserve_fds;                   /* descriptors the rest of the process needs: the
                                          limit is lowered (and a warning logged) so that
                                          RLIMIT_NOFILE keeps them free; 0: no check */
} bus_options;

/* Creates the ZeroMQ context and the PUB socket, binds it, loads the CURVE keys
 * if asked, and starts the bus thread. The options' strings are not kept.
 * Returns the bus (free with bus_close), or NULL with a one-line reason in err
 * (bad endpoint, address in use, CURVE requested but unavailable in libzmq,
 * key file unreadable or malformed, ...); nothing is logged, the caller logs
 * the reason. */
bus *bus_open(const bus_options *o, char *err, size_t errlen);

/* Queues a two-frame message: topic (a NUL-terminated string of 1..255
 * bytes), then len bytes of body (<= BUS_MAX_BODY; the caller's UTF-8 JSON).
 * Both are copied. Thread-safe; never blocks beyond a short mutex. Returns 0,
 * or -1 with errno EINVAL (bad arguments), ENOBUFS (queue full: counted as a
 * drop) or ENOMEM. A 0 means queued: a subscriber past its hwm may still miss
 * it, and so may every subscriber if bus_close comes before it is sent. */
int bus_publish(bus *b, const char *topic, const char *json, size_t len);

/* As bus_publish for an alert whose body carries "seq":seq: from now on
 * heartbeats carry seq (if greater than the last one), even if the queue was
 * full and the alert dropped. */
int bus_publish_alert(bus *b, const char *topic, const char *json, size_t len, uint64_t seq);

/* The endpoint actually bound (ZMQ_LAST_ENDPOINT), e.g. "tcp://127.0.0.1:40123"
 * after binding "tcp://127.0.0.1:*". Owned by the bus, valid until bus_close. */
const char *bus_endpoint(const bus *b);

/* The server's public key in Z85 (40 characters) when CURVE is on, else NULL.
 * Owned by the bus, valid until bus_close. */
const char *bus_curve_public_key(const bus *b);

/* Counters for /metrics: messages from bus_publish* handed to the socket, and
 * messages lost (queue full or a failed send). Heartbeats are not counted.
 * Either pointer may be NULL. Thread-safe. */
void bus_stats(bus *b, uint64_t *published, uint64_t *dropped);

/* Stops the bus thread, closes the sockets (linger 0: messages not yet sent
 * are dropped) and the context, frees b. No bus_publish* may run concurrently
 * with or after it. NULL is a no-op. */
void bus_close(bus *b);

#endif
