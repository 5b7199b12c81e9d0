#!/usr/bin/env python3
"""lanyard gameday: rotation game days on the local netns mesh.

  lanyard gameday list
  lanyard gameday run SCENARIO... [--out DIR] [--ttl DUR] [--duration DUR]
  lanyard gameday run --compose SCENARIO... [--image IMG] [--app-image IMG]

Each scenario brings up the local mesh (deploy/local/mesh.sh: pods ca,
web, api, legacy), drives traffic from web to api -- new connections one
after another (each a new TCP connection and a new mTLS handshake between
the agents) and a few long-lived keep-alive connections -- injects its
fault, and measures the SLIs: success rate and latency of new
connections, requests failed, long-lived connections dropped, rotations
seen (the agents' /status), identity runway (the agents' SVID expiry and
the CA's /api/mesh), time to recover. It prints a timeline and a verdict
per SLO, writes report.json, a chart per scenario (PNG) and the raw logs
into a new folder, and exits 1 when an SLO is missed (0: all met; 2: it
could not run).

With --compose, the same drills run on the docker-compose mesh
(deploy/compose/docker-compose.yml, images lanyard:local and
lanyard-demo-app:local) under a project of their own, taken down with its
volumes at the end; the driver and samplers run in the containers'
network namespaces (nsenter). clock-skew is skipped there.

Needs root (network namespaces, iptables). Written in Python 3 (Debian's
python3, standard library only); `clock-skew` uses libfaketime (Debian
package faketime).
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.realpath(__file__))
MESH = os.path.join(HERE, "..", "local", "mesh.sh")
API = ("10.77.0.21", 8080)
AGENT_ADMIN = "http://127.0.0.1:15020"
CA_ADMIN = "http://127.0.0.1:15014"
AGENTS = ("web", "api")
PROXY_UID = "1337"
# How long a process (or the first request) may take to come up: the waits
# end as soon as it is up, and a loaded machine must not make it an error.
START_WAIT_S = 30
# The admin endpoints are local: a proxy from the environment must not
# take the requests (-q: no ~/.curlrc).
CURL = ["curl", "-q", "-s", "-m", "5", "--noproxy", "*"]


def lanyard_bin():
    b = os.environ.get("LANYARD")
    if b:
        return b
    return os.path.normpath(os.path.join(HERE, "..", "..", "build", "lanyard"))


def parse_duration(s):
    """'20s', '2m', '500ms', '1h' or plain seconds -> seconds (float)."""
    s = s.strip()
    for suffix, mult in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if s.endswith(suffix) and s[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(s[: -len(suffix)]) * mult
    if s.replace(".", "", 1).isdigit():
        return float(s)
    raise argparse.ArgumentTypeError("not a duration: %r (e.g. 20s, 2m)" % s)


def fmt_s(x):
    return "%ds" % round(x) if x >= 10 else "%.1fs" % x


# ---- children: run inside a pod's network namespace ------------------------


class Stop:
    def __init__(self):
        self.ev = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: self.ev.set())
        signal.signal(signal.SIGINT, lambda *_: self.ev.set())


class JsonLog:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, rec):
        line = json.dumps(rec, separators=(",", ":"))
        with self.lock:
            self.f.write(line + "\n")


def one_request(conn, marker, keep_alive):
    """One GET / on conn; returns (ok, error)."""
    hdrs = {"X-Marker": marker, "Connection": "keep-alive" if keep_alive else "close"}
    conn.request("GET", "/", headers=hdrs)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        return False, "HTTP %d" % r.status
    if not body.startswith(b"hello from api"):
        return False, "unexpected body"
    return True, ""


def err_text(e):
    return ("%s: %s" % (type(e).__name__, e)).strip().rstrip(":")


def traffic_main(a):
    """New connections, one after another, and a.long keep-alive ones.
    Every request is one JSON line: t (unix time, when it started), kind
    (new or long), marker (the X-Marker header, which api's nginx logs),
    ok, ms (latency), err; long-lived ones also conn (connection number)
    and dropped (an established connection broke)."""
    stop = Stop()
    log = JsonLog(a.log)
    run = "%x" % int(time.time())
    host, port = a.api.rsplit(":", 1)
    port = int(port)

    def new_loop():
        n = 0
        while not stop.ev.is_set():
            n += 1
            marker = "gd-%s-new-%d" % (run, n)
            t0 = time.time()
            c = http.client.HTTPConnection(host, port, timeout=a.timeout)
            try:
                ok, err = one_request(c, marker, False)
            except Exception as e:  # refused, reset, timeout: a failure
                ok, err = False, err_text(e)
            finally:
                c.close()
            ms = (time.time() - t0) * 1000
            log.write({"t": round(t0, 4), "kind": "new", "marker": marker, "ok": ok,
                       "ms": round(ms, 3), "err": err})
            stop.ev.wait(a.gap)

    def long_loop(k):
        conn_no = 0
        n = 0
        while not stop.ev.is_set():
            conn_no += 1
            cid = "%d.%d" % (k, conn_no)
            c = http.client.HTTPConnection(host, port, timeout=a.timeout)
            served = 0
            while not stop.ev.is_set():
                n += 1
                marker = "gd-%s-long-%s-%d" % (run, cid, n)
                t0 = time.time()
                try:
                    ok, err = one_request(c, marker, True)
                except Exception as e:
                    ok, err = False, err_text(e)
                ms = (time.time() - t0) * 1000
                rec = {"t": round(t0, 4), "kind": "long", "conn": cid, "marker": marker,
                       "ok": ok, "ms": round(ms, 3), "err": err}
                if not ok:
                    rec["dropped"] = served > 0
                log.write(rec)
                if not ok:
                    break
                served += 1
                stop.ev.wait(a.long_gap)
            c.close()
            stop.ev.wait(a.gap)

    threads = [threading.Thread(target=new_loop, daemon=True)]
    threads += [threading.Thread(target=long_loop, args=(k,), daemon=True)
                for k in range(1, a.long + 1)]
    for t in threads:
        t.start()
    stop.ev.wait()
    for t in threads:
        t.join(a.timeout + 1)


def sample_main(a):
    """GET a.url every a.every seconds; one JSON line each: t, ok, body
    (the parsed JSON) or err."""
    stop = Stop()
    log = JsonLog(a.log)
    host, port = a.url.split("//", 1)[1].split("/", 1)[0].split(":")
    path = "/" + a.url.split("//", 1)[1].split("/", 1)[1]
    while not stop.ev.is_set():
        t0 = time.time()
        c = http.client.HTTPConnection(host, int(port), timeout=1)
        rec = {"t": round(t0, 3)}
        try:
            c.request("GET", path)
            r = c.getresponse()
            rec["body"] = json.loads(r.read())
            rec["ok"] = r.status == 200
        except Exception as e:
            rec["ok"] = False
            rec["err"] = err_text(e)
        finally:
            c.close()
        log.write(rec)
        stop.ev.wait(max(0.05, a.every - (time.time() - t0)))


# ---- the mesh and its processes ----------------------------------------------


class GamedayError(Exception):
    pass


def read_jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass  # a line cut short by the child's stop
    except FileNotFoundError:
        pass
    return out


def last_jsonl(path):
    """The last complete line of a JSON-lines file (small reads only)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


class Run:
    """One scenario's mesh, traffic, samplers, events and marks."""

    def __init__(self, name, ttl, duration, sdir):
        self.name = name
        self.ttl = ttl
        self.duration = duration
        self.sdir = sdir
        self.state = tempfile.mkdtemp(prefix="lanyard-gameday.")
        os.chmod(self.state, 0o755)  # the agents (UID 1337) read below it
        self.L = lanyard_bin()
        self.children = []
        self.events = []
        self.marks = {}
        self.t0 = None
        self.facts = {}  # what the scenario observed, for its SLOs
        self.api = "%s:%d" % API  # where the traffic driver sends its requests

    # -- mesh --
    def mesh(self, *args, check=True):
        env = dict(os.environ, LANYARD=self.L)
        p = subprocess.run(["bash", MESH] + list(args) + ["--state", self.state],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if check and p.returncode != 0:
            raise GamedayError("mesh.sh %s failed:\n%s" % (args[0], p.stdout.strip()))
        return p

    def up(self):
        try:
            self.mesh("up", "--ttl", "%ds" % self.ttl)
            self.mesh_is_ours = True
        except GamedayError as e:
            # A half-made mesh is ours to clean; one already running (a
            # demo, another drill) is not.
            self.mesh_is_ours = "a mesh is up" not in str(e)
            raise

    def netns(self, pod):
        """The command prefix that runs a command in pod's network namespace."""
        return ["ip", "netns", "exec", "ly-" + pod]

    def in_pod(self, pod, cmd, **kw):
        return subprocess.run(self.netns(pod) + cmd, **kw)

    def spawn_child(self, pod, mode, *args):
        cmd = self.netns(pod) + [sys.executable, os.path.realpath(__file__), mode] + list(args)
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.sdir, "children.log"), "a"))
        self.children.append(p)
        return p

    def start_samplers(self):
        for pod in AGENTS:
            self.spawn_child(pod, "_sample", "--url", AGENT_ADMIN + "/status", "--log",
                             self.path(pod + ".status.jsonl"), "--every", "0.5")
        self.ca_sampler = self.spawn_child("ca", "_sample", "--url", CA_ADMIN + "/api/mesh",
                                           "--log", self.path("ca.mesh.jsonl"), "--every", "0.5")

    def start_traffic(self, long_conns=3):
        self.hist0 = self.handshake_hist()
        self.t0 = time.time()
        self.traffic = self.spawn_child("web", "_traffic", "--log", self.path("requests.jsonl"),
                                        "--long", str(long_conns), "--api", self.api)
        # The first answer: traffic flows before any fault.
        deadline = time.time() + START_WAIT_S
        while time.time() < deadline:
            r = last_jsonl(self.path("requests.jsonl"))
            if r and r.get("ok"):
                return
            time.sleep(0.1)
        raise GamedayError("no request from web to api succeeded within %d s of the start"
                           % START_WAIT_S)

    def stop_traffic(self):
        """Stops the driver; it finishes and logs the requests in flight."""
        t = getattr(self, "traffic", None)
        if t and t.poll() is None:
            t.send_signal(signal.SIGTERM)
            try:
                t.wait(10)
            except subprocess.TimeoutExpired:
                t.kill()
                t.wait()

    def stop_children(self):
        for p in self.children:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.children:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.children = []

    def path(self, name):
        return os.path.join(self.sdir, name)

    def now(self):
        return time.time() - self.t0

    def event(self, what, mark=None, at=None):
        """Records (and prints) what was done; `at`: when it began (a
        fault starts when its signal is sent, not when the wait for the
        process to go ends)."""
        t = self.now() if at is None else at
        self.events.append({"t": round(t, 2), "what": what})
        if mark:
            self.marks[mark] = round(t, 3)
        print("  %7.1fs  %s" % (t, what), flush=True)

    def sleep_until(self, t):
        d = t - self.now()
        if d > 0:
            time.sleep(d)

    # -- daemons (deploy/local/mesh.sh's wrapper records PID and status) --
    def pid(self, name):
        with open(os.path.join(self.state, "run", name + ".pid")) as f:
            return int(f.read().strip())

    def stop_daemon(self, name, sig=signal.SIGTERM, wait=20):
        pid = self.pid(name)
        os.kill(pid, sig)
        rc = os.path.join(self.state, "run", name + ".rc")
        deadline = time.time() + wait
        while not os.path.exists(rc):
            if time.time() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = time.time() + 5
            time.sleep(0.05)
        os.remove(rc)
        os.remove(os.path.join(self.state, "run", name + ".pid"))

    def start_daemon(self, name, pod, uid, cmd):
        pidf = os.path.join(self.state, "run", name + ".pid")
        subprocess.Popen(["setsid", "bash", MESH, "_run", self.state, name, "ly-" + pod,
                          uid] + cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + START_WAIT_S
        while not os.path.exists(pidf):
            if time.time() > deadline:
                raise GamedayError("%s did not start" % name)
            time.sleep(0.05)

    def ca_yaml(self):
        return os.path.join(self.state, "ca", "ca.yaml")

    def start_ca(self, env=()):
        self.start_daemon("ca", "ca", "0", ["env"] + list(env) +
                          [self.L, "ca", "serve", "-c", self.ca_yaml()])
        deadline = time.time() + START_WAIT_S
        while time.time() < deadline:
            p = self.in_pod("ca", ["ss", "-Hltn", "sport = :15012"], stdout=subprocess.PIPE,
                            text=True)
            if p.stdout.strip():
                return
            time.sleep(0.05)
        raise GamedayError("the CA did not listen again within %d s" % START_WAIT_S)

    def start_agent(self, pod, env=()):
        cfg = os.path.join(self.state, "pods", pod, "agent.yaml")
        self.start_daemon(pod + ".agent", pod, PROXY_UID, ["env"] + list(env) +
                          [self.L, "agent", "-c", cfg, "--log-level", "debug"])

    def lanyard_in(self, pod, args):
        return self.in_pod(pod, [self.L] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)

    def handshake_hist(self, pod="web", direction="outbound"):
        """The agent's handshake-duration histogram (/metrics): {le: count}."""
        p = self.in_pod(pod, CURL + [AGENT_ADMIN + "/metrics"],
                        stdout=subprocess.PIPE, text=True)
        hist = {}
        for line in p.stdout.splitlines():
            if line.startswith("lanyard_mtls_handshake_duration_seconds_bucket{") and \
                    'direction="%s"' % direction in line:
                le = line.split('le="', 1)[1].split('"', 1)[0]
                hist[float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
        return hist

    def post_rotate(self, pod):
        self.in_pod(pod, CURL + ["-X", "POST", AGENT_ADMIN + "/rotate"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # -- what the samplers saw last --
    def status(self, pod):
        r = last_jsonl(self.path(pod + ".status.jsonl"))
        return r["body"] if r and r.get("ok") else None

    def ca_mesh(self):
        r = last_jsonl(self.path("ca.mesh.jsonl"))
        return r["body"] if r and r.get("ok") else None

    def ready_sample(self, pod, after, timeout):
        """The first /status sample after unix time `after` that says the
        agent is ready (the record: t, when it was asked, and body)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = last_jsonl(self.path(pod + ".status.jsonl"))
            if r and r["t"] > after and r.get("ok") and r["body"].get("ready"):
                return r
            time.sleep(0.1)
        return None

    def runway(self):
        """Seconds until the first agent's SVID expires (the agents' own
        view: it holds while the CA is down)."""
        left = []
        for pod in AGENTS:
            s = self.status(pod)
            if s and s["identity"].get("valid"):
                left.append(s["identity"]["not_after"] - time.time())
        return min(left) if left else 0.0

    def wait_for(self, what, cond, timeout, every=0.2):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(every)
        return None

    def cleanup(self):
        self.stop_children()
        # Only a mesh this run brought up: when `up` found another one
        # running (someone's demo), that one is not ours to tear down.
        if getattr(self, "mesh_is_ours", False):
            self.mesh("down", check=False)
        logs = os.path.join(self.state, "logs")
        if os.path.isdir(logs):
            shutil.copytree(logs, self.path("logs"), dirs_exist_ok=True)
        shutil.rmtree(self.state, ignore_errors=True)


# ---- the compose mesh (--compose) --------------------------------------------
# The same drills on deploy/compose/docker-compose.yml under a project of
# their own: the driver and the samplers run here, on the host, inside the
# containers' network namespaces (nsenter), so the same code measures;
# faults are docker stop/kill/start and, for the CA's fault switch, a
# recreate with the variable the compose file passes through.

COMPOSE_DIR = os.path.normpath(os.path.join(HERE, "..", "compose"))
COMPOSE_FILE = "docker-compose.yml"
COMPOSE_SUBNET = "172.30.77.0/24"  # docker-compose.yml's mesh network
COMPOSE_API = "172.30.77.21:8080"
COMPOSE_CA_YAML = "/var/lib/lanyard/ca/ca.yaml"  # ca bootstrap --dir, in the ca container
COMPOSE_BUILD_HINT = ("build them with `cd deploy/compose && docker compose build` (or "
                      "docker-compose build), or name yours with --image/--app-image")


def docker_bin():
    return os.environ.get("DOCKER") or shutil.which("docker") or "docker"


def compose_bin():
    """Debian's docker-compose (v1), else the `docker compose` plugin (v2)."""
    if os.environ.get("COMPOSE_BIN"):
        return os.environ["COMPOSE_BIN"].split()
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    p = subprocess.run([docker_bin(), "compose", "version"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return [docker_bin(), "compose"] if p.returncode == 0 else None


def compose_preflight(opts):
    """Why --compose cannot run here (a sentence), or None."""
    d = docker_bin()
    try:
        p = subprocess.run([d, "info"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "no Docker engine answers (%s): %s" % (d, err_text(e))
    if p.returncode != 0:
        return "no Docker engine answers (%s info): %s" % (d, p.stderr.strip()[:200])
    if not compose_bin():
        return "neither docker-compose nor `docker compose` is installed"
    for img in (opts.image, opts.app_image):
        if subprocess.run([d, "image", "inspect", img], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            return "the image %s is missing: %s" % (img, COMPOSE_BUILD_HINT)
    return compose_subnet_taken()


def compose_subnet_taken():
    """The mesh's addresses are fixed (172.30.77.0/24): a network that
    overlaps them (a `docker compose up` of the same file, a test run)
    makes `up` fail, so say which one first."""
    import ipaddress
    d = docker_bin()
    ids = subprocess.run([d, "network", "ls", "-q"], stdout=subprocess.PIPE, text=True).stdout
    if not ids.split():
        return None
    p = subprocess.run([d, "network", "inspect", "-f",
                        "{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{end}}"] + ids.split(),
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    mine = ipaddress.ip_network(COMPOSE_SUBNET)
    for line in p.stdout.splitlines():
        name, *subnets = line.split()
        for s in subnets:
            try:
                if ipaddress.ip_network(s, strict=False).overlaps(mine):
                    return ("the Docker network %s already uses %s, the compose mesh's fixed "
                            "subnet (a `docker compose up` of deploy/compose or a test run?): "
                            "take it down first (docker compose down)" % (name, s))
            except ValueError:
                pass
    return None


class ComposeRun(Run):
    """One scenario on the compose mesh, project lanyard-gameday-<pid>."""

    SERVICES = {"ca": "ca", "web": "web", "api": "api",
                "ca.agent": None, "web.agent": "web-agent", "api.agent": "api-agent"}

    def __init__(self, name, ttl, duration, sdir, opts):
        super().__init__(name, ttl, duration, sdir)
        self.project = "lanyard-gameday-%d" % os.getpid()
        self.api = COMPOSE_API
        self.docker = docker_bin()
        self.compose_cmd = compose_bin()
        self.ids = {}
        # The agents' configs with this scenario's SVID TTL (the agents ask
        # for it; the CA caps at its max_ttl, 24h): a copy of
        # deploy/compose/agents that the compose file mounts instead.
        cfg = os.path.join(self.state, "agents")
        os.makedirs(cfg)
        os.chmod(cfg, 0o755)
        src = os.path.join(COMPOSE_DIR, "agents")
        for f in os.listdir(src):
            with open(os.path.join(src, f)) as fh:
                text = fh.read()
            text = re.sub(r"(?m)^(\s+ttl:)\s*\S+.*$", r"\g<1> %ds" % ttl, text)
            with open(os.path.join(cfg, f), "w") as fh:
                fh.write(text)
            os.chmod(os.path.join(cfg, f), 0o644)
        self.env = dict(os.environ, LANYARD_IMAGE=opts.image, LANYARD_APP_IMAGE=opts.app_image,
                        LANYARD_LOG_LEVEL="debug", LANYARD_AGENT_CONFIG_DIR=cfg,
                        LANYARD_FAULT_OMIT_INTERMEDIATE="")

    def compose(self, *args, timeout=300, **kw):
        return subprocess.run(self.compose_cmd + ["-f", COMPOSE_FILE, "-p", self.project] +
                              list(args), cwd=COMPOSE_DIR, env=self.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, **kw)

    def dock(self, *args, timeout=60):
        return subprocess.run([self.docker] + list(args), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout)

    def cid(self, name):
        svc = self.SERVICES[name]
        if svc not in self.ids:
            cid = self.compose("ps", "-a", "-q", svc).stdout.strip().splitlines()
            if not cid:
                raise GamedayError("no container for the compose service %s" % svc)
            self.ids[svc] = cid[-1]
        return self.ids[svc]

    def inspect(self, name, fmt):
        return self.dock("inspect", "-f", fmt, self.cid(name)).stdout.strip()

    def up(self):
        self.mesh_is_ours = True  # our own project: always ours to take down
        p = self.compose("up", "-d", "--no-build")
        if p.returncode != 0:
            hint = ""
            if "overlap" in p.stdout:
                hint = "\n(%s)" % (compose_subnet_taken() or "the subnet %s is taken" %
                                   COMPOSE_SUBNET)
            raise GamedayError("%s up failed:\n%s%s" % (" ".join(self.compose_cmd),
                                                         p.stdout.strip()[-2000:], hint))
        # Healthy: web's agent answers /readyz, api's holds an identity.
        for svc in ("web.agent", "api"):
            ok = self.wait_for(svc, lambda: self.inspect(
                svc, "{{if .State.Health}}{{.State.Health.Status}}{{end}}") == "healthy", 90, 0.5)
            if not ok:
                raise GamedayError("the compose service %s did not become healthy within 90 s"
                                   % self.SERVICES[svc])

    def netns(self, pod):
        # The app's container holds the pod's namespace (its agent joins
        # it), so an agent's restart keeps it; the CA's is new at each start.
        pid = self.inspect(pod, "{{.State.Pid}}")
        if not pid or pid == "0":
            raise GamedayError("the compose service %s is not running" % self.SERVICES[pod])
        return ["nsenter", "-t", pid, "-n"]

    def stop_daemon(self, name, sig=signal.SIGTERM, wait=20):
        if sig == signal.SIGKILL:
            self.dock("kill", self.cid(name))
            self.dock("wait", self.cid(name), timeout=wait + 10)
        else:
            self.dock("stop", "-t", str(wait), self.cid(name), timeout=wait + 30)

    def start_ca(self, env=()):
        fault = ""
        for kv in env:
            if kv != "LANYARD_FAULT_OMIT_INTERMEDIATE=1":
                raise GamedayError("the compose mesh cannot pass %s to the CA" % kv)
            fault = "1"
        if fault != self.env["LANYARD_FAULT_OMIT_INTERMEDIATE"]:
            # The compose file passes the switch through: a recreate (same
            # volumes, same address) starts the CA with it on or off.
            self.env["LANYARD_FAULT_OMIT_INTERMEDIATE"] = fault
            p = self.compose("up", "-d", "--no-deps", "--no-build", "ca")
            self.ids.pop("ca", None)
            if p.returncode != 0:
                raise GamedayError("recreating the CA failed:\n%s" % p.stdout.strip()[-1000:])
        else:
            p = self.dock("start", self.cid("ca"))
            if p.returncode != 0:
                raise GamedayError("docker start ca failed: %s" % p.stdout.strip())
        listening = self.wait_for("ca", lambda: self.in_pod(
            "ca", ["ss", "-Hltn", "sport = :15012"], stdout=subprocess.PIPE,
            text=True).stdout.strip(), 30, 0.1)
        if not listening:
            raise GamedayError("the CA did not listen again within 30 s")
        # The sampler follows the CA into its new namespace.
        old = getattr(self, "ca_sampler", None)
        if old is not None and old.poll() is None:
            old.send_signal(signal.SIGTERM)
            old.wait(10)
        self.ca_sampler = self.spawn_child("ca", "_sample", "--url", CA_ADMIN + "/api/mesh",
                                           "--log", self.path("ca.mesh.jsonl"), "--every", "0.5")

    def start_agent(self, pod, env=()):
        if env:
            raise GamedayError("the compose mesh cannot start an agent with %s" % " ".join(env))
        p = self.dock("start", self.cid(pod + ".agent"))
        if p.returncode != 0:
            raise GamedayError("docker start %s-agent failed: %s" % (pod, p.stdout.strip()))

    def ca_yaml(self):
        return COMPOSE_CA_YAML

    def lanyard_in(self, pod, args):
        return self.dock("exec", self.cid(pod), "lanyard", *args)

    def cleanup(self):
        # Always down -v, also on Ctrl-C: a second Ctrl-C (or a SIGTERM)
        # must not cut it short (its own session: the terminal's signal
        # misses it).
        old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.stop_children()
            logs = self.path("logs")
            os.makedirs(logs, exist_ok=True)
            with open(os.path.join(logs, "compose.log"), "w") as f:
                subprocess.run(self.compose_cmd + ["-f", COMPOSE_FILE, "-p", self.project, "logs",
                                                   "--no-color", "--timestamps"],
                               cwd=COMPOSE_DIR, env=self.env, stdin=subprocess.DEVNULL, stdout=f,
                               stderr=subprocess.STDOUT, start_new_session=True, timeout=120)
            p = subprocess.run(self.compose_cmd + ["-f", COMPOSE_FILE, "-p", self.project, "down",
                                                   "-v", "-t", "5"],
                               cwd=COMPOSE_DIR, env=self.env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, timeout=300)
            if p.returncode != 0:
                print("  WARNING: %s down -v failed: %s" % (self.project, p.stdout.strip()[-500:]),
                      file=sys.stderr)
        finally:
            shutil.rmtree(self.state, ignore_errors=True)
            for sig, h in old.items():
                signal.signal(sig, h)


# ---- scenarios -------------------------------------------------------------
# Each: ttl (the SVID TTL it runs with unless --ttl), a description, a
# body that injects the fault (rel. times from the traffic's start), and
# the SLOs it is judged against (after the analysis, in slos_for).


def sc_rapid_rotation(r):
    r.event("SVID TTL %s: each agent renews at half-life, about every %s" %
            (fmt_s(r.ttl), fmt_s(r.ttl / 2)))
    r.sleep_until(r.duration)


def sc_ca_outage_short(r):
    r.sleep_until(r.duration * 0.2)
    runway = r.runway()
    down = max(1.0, min(runway - max(4.0, runway * 0.3), r.duration * 0.6))
    if r.facts.get("outage_opt"):
        down = r.facts["outage_opt"]  # --outage: the operator's length
    r.facts["runway_at_stop_s"] = round(runway, 1)
    r.facts["outage_s"] = round(down, 1)
    at = r.now()
    r.stop_daemon("ca")
    r.event("CA stopped for %s (runway %s: %s)" %
            (fmt_s(down), fmt_s(runway), "every SVID outlives the outage" if down < runway
             else "SVIDs expire before the CA returns"), "fault_start", at)
    time.sleep(down)
    r.start_ca()
    r.event("CA back", "fault_end")
    back = time.time()
    # Each agent renews after the CA's return, before its SVID runs out.
    renewed = {}
    for pod in AGENTS:
        before = r.status(pod)
        serial = before["identity"]["serial"] if before else None
        ok = r.wait_for("renewal", lambda: (r.status(pod) or {}).get("identity", {})
                        .get("serial") not in (None, serial), max(runway, r.ttl) + 5)
        renewed[pod] = bool(ok)
    r.facts["renewed_after_return"] = renewed
    r.event("agents renewed after the CA's return: %s" %
            ", ".join("%s %s" % (p, "yes" if v else "NO") for p, v in renewed.items()))
    r.sleep_until(max(r.duration, r.now() + 2))
    r.facts["back_at"] = back


def sc_ca_outage_long(r):
    r.sleep_until(r.duration * 0.2)
    runway = r.runway()
    down = runway + max(5.0, r.duration * 0.25)
    if r.facts.get("outage_opt"):
        down = r.facts["outage_opt"]
    r.facts["runway_at_stop_s"] = round(runway, 1)
    r.facts["outage_s"] = round(down, 1)
    r.facts["expiry_at"] = round(r.now() + runway, 2)
    at = r.now()
    r.stop_daemon("ca")
    r.event("CA stopped for %s; the first SVID expires in %s" % (fmt_s(down), fmt_s(runway)),
            "fault_start", at)
    reasons = r.facts["reasons"] = {}
    if down > runway:
        r.sleep_until(r.facts["expiry_at"])
        r.event("first SVID expires (runway 0)", "expiry")

        # While down and expired, the agents fail closed and say why.
        def said_why():
            for pod in AGENTS:
                ident = (r.status(pod) or {}).get("identity", {})
                if ident and (not ident.get("valid", True) or ident.get("expired")):
                    reasons[pod] = ident.get("last_error") or "expired"
            return len(reasons) > 0
        r.wait_for("expired", said_why, max(1.0, at + down - r.now()))
        for pod, why in reasons.items():
            r.event("%s agent fails closed: SVID expired; last error: %s" % (pod, why[:90]))
    r.sleep_until(r.marks["fault_start"] + down)
    r.start_ca()
    r.event("CA back", "fault_end")
    r.sleep_until(max(r.duration, r.now() + 8))


def sc_agent_restart(r, pod="api"):
    r.sleep_until(r.duration * 0.3)
    at = r.now()
    r.stop_daemon(pod + ".agent", signal.SIGKILL)
    r.event("%s agent killed (SIGKILL)" % pod, "fault_start", at)
    time.sleep(1.0)
    r.start_agent(pod)
    r.event("%s agent restarted" % pod, "fault_end")
    r.sleep_until(max(r.duration, r.now() + 5))


def sc_clock_skew(r, pod="web"):
    # Before the traffic (setup, not measured): the agent restarts on a
    # clock off by SKEW, via libfaketime.
    skew = r.facts["skew_s"]
    lib = find_faketime()
    r.stop_daemon(pod + ".agent")
    # A sanitizer build wants its runtime first among the libraries and
    # aborts when a preload comes before it: allow it (no effect otherwise).
    asan = ":".join(x for x in (os.environ.get("ASAN_OPTIONS", ""),
                                "verify_asan_link_order=0") if x)
    r.start_agent(pod, ["LD_PRELOAD=" + lib, "FAKETIME=%+ds" % skew,
                        "FAKETIME_DONT_FAKE_MONOTONIC=1", "ASAN_OPTIONS=" + asan])
    t = time.time()
    sample = r.ready_sample(pod, t + 0.5, START_WAIT_S)
    if not sample:
        raise GamedayError("the %s agent did not come back ready under libfaketime within %d s"
                           % (pod, START_WAIT_S))
    # The agent's clock against the sampler's, in one answer.
    r.facts["observed_skew_s"] = round(sample["body"]["time"] - sample["t"])


def sc_root_rotation(r):
    r.sleep_until(r.duration * 0.15)
    m = r.ca_mesh() or {}
    old = {x["sha256"] for x in m.get("ca", {}).get("roots", [])}
    r.facts["old_roots"] = sorted(old)
    steps = r.facts["steps"] = {}

    def step(verb, timeout):
        first_refusal = None
        deadline = time.time() + timeout
        while True:
            p = r.lanyard_in("ca", ["ca", "root", verb, "-c", r.ca_yaml()])
            out = p.stdout.strip().splitlines()
            if p.returncode == 0:
                r.event("ca root %s: %s" % (verb, out[0][:160] if out else "done"))
                steps[verb] = {"ok": True, "refusal": first_refusal}
                return True
            if first_refusal is None:
                first_refusal = " ".join(" ".join(out).split())[:300]
                r.event("ca root %s refused (retrying): %s" % (verb, first_refusal[:160]))
            if time.time() > deadline:
                r.event("ca root %s still refused after %s" % (verb, fmt_s(timeout)))
                steps[verb] = {"ok": False, "refusal": first_refusal}
                return False
            time.sleep(1)

    if step("prepare", 5):
        m = r.wait_for("new root", lambda: (lambda mm: mm if mm and len(
            mm["ca"]["roots"]) > len(old) else None)(r.ca_mesh()), 10)
        new = {x["sha256"] for x in (m or {}).get("ca", {}).get("roots", [])} - old
        r.facts["new_roots"] = sorted(new)
        if step("activate", max(30, 4 * r.ttl)) and step("retire", max(30, 4 * r.ttl) + 10):
            r.marks["retired"] = round(r.now(), 3)
    # After the retirement: the agents' bundles drop the old root, and the
    # traffic keeps flowing through at least one more rotation.
    r.sleep_until(max(r.duration, r.now() + r.ttl))
    bundles = {}
    for pod in AGENTS:
        s = r.status(pod) or {}
        bundles[pod] = sorted(x["sha256"] for x in s.get("identity", {}).get("bundle_roots", []))
    r.facts["bundles_at_end"] = bundles


def sc_intermediate_rotation(r):
    r.sleep_until(r.duration * 0.2)
    before = (r.ca_mesh() or {}).get("ca", {}).get("signing", {}).get("sha256")
    r.facts["old_intermediate"] = before
    at = r.now()
    p = r.lanyard_in("ca", ["ca", "intermediate", "rotate", "-c", r.ca_yaml()])
    out = p.stdout.strip().splitlines()
    r.facts["rotate_ok"] = p.returncode == 0
    r.event("ca intermediate rotate: %s" % ((out[0][:160] if out else "") or
                                             "exit %d" % p.returncode), "fault_start", at)
    if p.returncode != 0:
        r.sleep_until(r.duration)
        return
    new = r.wait_for("new intermediate", lambda: (lambda s: s if s and s != before else None)(
        (r.ca_mesh() or {}).get("ca", {}).get("signing", {}).get("sha256")), 10)
    r.facts["new_intermediate"] = new

    def all_moved():
        certs = r.lanyard_in("ca", ["ca", "certs", "-c", r.ca_yaml(), "--json"])
        try:
            rows = {c["serial"]: c for c in json.loads(certs.stdout)}
        except ValueError:
            return False
        for pod in AGENTS:
            s = r.status(pod)
            row = rows.get((s or {}).get("identity", {}).get("serial"))
            if not row or row.get("intermediate_sha256") != new:
                return False
        return True
    moved = r.wait_for("moved", all_moved, 3 * r.ttl + 5, every=0.5)
    # from the command's start: it may wait for the CA to switch
    r.facts["moved_s"] = round(r.now() - at, 1) if moved else None
    r.event("every agent holds an SVID from the new intermediate" if moved else
            "NOT every agent moved to the new intermediate within %s" % fmt_s(3 * r.ttl + 5))
    r.sleep_until(max(r.duration, r.now() + 2))


def sc_broken_chain(r):
    r.sleep_until(r.duration * 0.15)
    serial0 = {p: (r.status(p) or {}).get("identity", {}).get("serial") for p in AGENTS}
    fail0 = {p: (r.status(p) or {}).get("identity", {}).get("rotations", {}).get("failure", 0)
             for p in AGENTS}
    at = r.now()
    r.stop_daemon("ca")
    r.start_ca(["LANYARD_FAULT_OMIT_INTERMEDIATE=1"])
    for p in AGENTS:
        r.post_rotate(p)
    r.event("CA restarted with LANYARD_FAULT_OMIT_INTERMEDIATE=1 (SVIDs sent without their "
            "intermediate); rotation requested on both agents", "fault_start", at)
    refused = {}

    def all_refused():
        for p in AGENTS:
            s = r.status(p) or {}
            ident = s.get("identity", {})
            if ident.get("rotations", {}).get("failure", 0) > fail0[p] and ident.get("last_error"):
                refused[p] = {"last_error": ident["last_error"],
                              "kept_serial": ident.get("serial") == serial0[p]}
        return len(refused) == len(AGENTS)
    r.wait_for("refusal", all_refused, max(5.0, r.runway() - 5))
    r.facts["refused"] = refused
    for p, v in refused.items():
        r.event("%s agent refused the chain and kept its SVID: %s" % (p, v["last_error"][:90]))
    r.sleep_until(r.now() + 2)
    r.stop_daemon("ca")
    r.start_ca()
    for p in AGENTS:
        r.post_rotate(p)
    r.event("CA fixed (restarted without the fault); rotation requested", "fault_end")
    renewed = {}

    def all_renewed():
        for p in AGENTS:
            s = (r.status(p) or {}).get("identity", {})
            if s.get("serial") not in (None, serial0[p]):
                renewed[p] = True
        return len(renewed) == len(AGENTS)
    r.wait_for("renewed", all_renewed, max(5.0, r.runway()))
    r.facts["renewed_after_fix"] = {p: renewed.get(p, False) for p in AGENTS}
    r.event("agents renewed after the fix: %s" % ", ".join(
        "%s %s" % (p, "yes" if renewed.get(p) else "NO") for p in AGENTS))
    r.sleep_until(max(r.duration, r.now() + 2))


SCENARIOS = {
    "rapid-rotation": (6, "short SVID TTL: many rotations under traffic; nothing may fail",
                       sc_rapid_rotation),
    "ca-outage-short": (20, "the CA is stopped for less than the SVIDs' remaining life; "
                        "nothing may fail", sc_ca_outage_short),
    "ca-outage-long": (10, "the CA stays down past the SVIDs' expiry: the agents fail closed "
                       "and say why, and recover by themselves when it returns",
                       sc_ca_outage_long),
    "root-rotation": (10, "ca root prepare -> activate -> retire under traffic; nothing may "
                      "fail", sc_root_rotation),
    "intermediate-rotation": (10, "ca intermediate rotate under traffic; nothing may fail",
                              sc_intermediate_rotation),
    "agent-restart": (20, "the api agent is killed (SIGKILL) and restarted; new connections "
                      "recover quickly", sc_agent_restart),
    "clock-skew": (20, "the web agent's clock runs 5 s ahead (libfaketime), within the CA's "
                   "10 s backdating; nothing may fail", sc_clock_skew),
    "broken-chain": (20, "the CA sends SVIDs without their intermediate: agents refuse them, "
                     "keep their SVID and say why; nothing may fail", sc_broken_chain),
}
NEEDS_ROOT_CMD = ("root-rotation", "intermediate-rotation")
RECOVERY_SLO_S = 5.0


def find_faketime():
    import glob
    for pat in ("/usr/lib/*/faketime/libfaketimeMT.so.1", "/usr/lib/faketime/libfaketimeMT.so.1",
                "/usr/local/lib/faketime/libfaketimeMT.so.1"):
        hits = glob.glob(pat)
        if hits:
            return hits[0]
    return None


def skip_reason(name, L, compose=False):
    if compose and name == "clock-skew":
        return ("the compose mesh's image has no libfaketime to skew an agent's clock (run "
                "clock-skew on the local mesh)")
    if name in NEEDS_ROOT_CMD and not compose:
        p = subprocess.run([L, "ca", "root", "--help"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if p.returncode != 0:
            return "this build lacks `lanyard ca root`"
    if name == "clock-skew" and not find_faketime():
        return "libfaketime is not installed (apt-get install faketime)"
    return None


# ---- analysis ----------------------------------------------------------------


def pct(vals, q):
    if not vals:
        return None
    v = sorted(vals)
    i = min(len(v) - 1, max(0, int(round(q / 100.0 * (len(v) - 1)))))
    return round(v[i], 2)


def counters(samples, key):
    """Sum of the increases of identity.rotations[key] across samples (an
    agent restart starts its counters again at 0)."""
    total, prev = 0, None
    for s in samples:
        if not s.get("ok"):
            continue
        v = s["body"]["identity"]["rotations"][key]
        if prev is not None and v > prev:
            total += v - prev
        elif prev is not None and v < prev:
            total += v
        prev = v
    return total


def analyze(r):
    t0 = r.t0
    reqs = [dict(x, t=x["t"] - t0) for x in read_jsonl(r.path("requests.jsonl"))]
    new = [x for x in reqs if x["kind"] == "new"]
    long_ = [x for x in reqs if x["kind"] == "long"]
    st = {p: [dict(x, t=x["t"] - t0) for x in read_jsonl(r.path(p + ".status.jsonl"))]
          for p in AGENTS}
    ca = [dict(x, t=x["t"] - t0) for x in read_jsonl(r.path("ca.mesh.jsonl"))]
    end = max([x["t"] for x in reqs] + [1.0])
    run_st = {p: [s for s in v if s["t"] >= 0] for p, v in st.items()}

    failed = [x for x in new if not x["ok"]]
    lat = [x["ms"] for x in new if x["ok"]]
    slis = {
        "new_connections": {
            "requests": len(new),
            "ok": len(new) - len(failed),
            "failed": len(failed),
            "success_rate": round((len(new) - len(failed)) / len(new), 6) if new else None,
            "latency_ms": {"p50": pct(lat, 50), "p99": pct(lat, 99)},
            "failure_reasons": {},
        },
        "long_lived": {
            # established ones: a reconnect refused while an agent is down
            # is a failed request, not a connection
            "connections": len({x["conn"] for x in long_ if x["ok"]}),
            "requests": len(long_),
            "failed": sum(1 for x in long_ if not x["ok"]),
            "dropped": sum(1 for x in long_ if x.get("dropped")),
        },
        "rotations": {p: counters(run_st[p], "success") for p in AGENTS},
        "rotation_failures": {p: counters(run_st[p], "failure") for p in AGENTS},
        # mTLS handshake failures by reason, as each agent counted them
        # (its last /status: counters since it started)
        "mtls_failures": {},
    }
    for p in AGENTS:
        last = next((x["body"] for x in reversed(st[p]) if x.get("ok")), None)
        if last:
            fails = {d: {k: v for k, v in last["mtls"][d]["failures"].items() if v}
                     for d in ("inbound", "outbound")}
            slis["mtls_failures"][p] = {d: v for d, v in fails.items() if v}
    # Handshake latency as web's agent measured it (its outbound
    # histogram over the run): the bucket bound each quantile falls under.
    h0, h1 = getattr(r, "hist0", {}), getattr(r, "hist1", {})
    if h1 and all(h1.get(le, 0) >= h0.get(le, 0) for le in h1):
        d = sorted((le, h1[le] - h0.get(le, 0)) for le in h1)
        total = d[-1][1] if d else 0

        def q(f):
            for le, n_le in d:
                if total and n_le >= f * total:
                    return None if le == float("inf") else le * 1000
            return None
        slis["handshake_ms"] = {"handshakes": int(total), "p50_at_most": q(0.5),
                                "p99_at_most": q(0.99)}
    for x in failed:
        reason = x["err"].split(":")[0] or "error"
        fr = slis["new_connections"]["failure_reasons"]
        fr[reason] = fr.get(reason, 0) + 1

    # Runway over time: the agents' view (min over agents of SVID life
    # left; 0 when one has none), and the CA's while it answers.
    def runway_at(t):
        left = []
        for p in AGENTS:
            last = None
            for s in st[p]:
                if s["t"] > t:
                    break
                last = s
            if last is None or not last.get("ok"):
                continue
            ident = last["body"]["identity"]
            left.append(max(0.0, ident["not_after"] - (t + t0)) if ident.get("valid") else 0.0)
        return min(left) if left else None

    step = 1.0 if end <= 45 else 2.0
    intervals = []
    t = 0.0
    while t < end:
        b = [x for x in new if t <= x["t"] < t + step]
        lb = [x for x in long_ if t <= x["t"] < t + step]
        okb = [x["ms"] for x in b if x["ok"]]
        ca_b = [x for x in ca if t <= x["t"] < t + step]
        iv = {
            "t0": round(t, 2), "t1": round(t + step, 2),
            "new_ok": len(okb), "new_failed": len(b) - len(okb),
            "success_rate": round(len(okb) / len(b), 4) if b else None,
            "p50_ms": pct(okb, 50), "p99_ms": pct(okb, 99),
            "long_ok": sum(1 for x in lb if x["ok"]),
            "long_failed": sum(1 for x in lb if not x["ok"]),
            "long_dropped": sum(1 for x in lb if x.get("dropped")),
            "runway_s": None if runway_at(t + step) is None else round(runway_at(t + step), 1),
            "ca_up": any(x.get("ok") for x in ca_b) if ca_b else None,
            "ca_runway_s": next((x["body"].get("runway_seconds") for x in reversed(ca_b)
                                 if x.get("ok")), None),
        }
        intervals.append(iv)
        t += step
    rw = [iv["runway_s"] for iv in intervals if iv["runway_s"] is not None]
    slis["runway_s"] = {"min": min(rw) if rw else None, "max": max(rw) if rw else None}

    # Time to recover: from the end of the fault to the first success on a
    # new connection that starts a run of successes (2 s, or to the end):
    # a lone success between failures is not a recovery.
    if "fault_end" in r.marks:
        fe = r.marks["fault_end"]
        fs = r.marks.get("fault_start", fe)
        if not [x for x in failed if x["t"] >= fs]:
            rec_at = fe
        else:
            rec_at, run_start = None, None
            for x in new:
                if x["t"] < fe:
                    continue
                if rec_at is not None:
                    break
                if not x["ok"]:
                    run_start = None
                    continue
                if run_start is None:
                    run_start = x["t"]
                if rec_at is None and (x["t"] - run_start >= 2.0):
                    rec_at = run_start
            if rec_at is None and run_start is not None:
                rec_at = run_start  # successes to the end of the run
        slis["recovery_s"] = None if rec_at is None else round(max(0.0, rec_at - fe), 2)
        slis["failed_after_recovery"] = None if rec_at is None else sum(
            1 for x in failed if x["t"] > rec_at)
    return reqs, slis, intervals


def slo(name, met, observed):
    return {"slo": name, "met": bool(met), "observed": observed}


def slos_for(r, slis, reqs):
    n = slis["new_connections"]
    lg = slis["long_lived"]
    zero_fail = slo("0 failed requests on new connections", n["failed"] == 0 and n["requests"] > 0,
                    "%d of %d failed" % (n["failed"], n["requests"]))
    zero_drop = slo("0 long-lived connections dropped", lg["dropped"] == 0,
                    "%d dropped, %d connections" % (lg["dropped"], lg["connections"]))
    rot = slis["rotations"]
    out = []
    name = r.name
    f = r.facts
    if name == "rapid-rotation":
        want = max(2, int(r.duration / r.ttl))
        out = [zero_fail, zero_drop,
               slo("at least %d rotations per agent" % want, all(v >= want for v in rot.values()),
                   ", ".join("%s %d" % kv for kv in rot.items()))]
    elif name == "ca-outage-short":
        out = [zero_fail, zero_drop,
               slo("the outage was shorter than the runway",
                   f.get("outage_s", 0) < f.get("runway_at_stop_s", 0),
                   "CA down %s, runway %s" % (fmt_s(f.get("outage_s", 0)),
                                              fmt_s(f.get("runway_at_stop_s", 0)))),
               slo("every agent renewed after the CA's return",
                   all(f.get("renewed_after_return", {}).values()) and
                   f.get("renewed_after_return"), str(f.get("renewed_after_return")))]
    elif name == "ca-outage-long":
        rec = slis.get("recovery_s")
        exp = f.get("expiry_at", 0)
        early = [x for x in reqs if x["kind"] == "new" and not x["ok"] and
                 x["t"] - r.t0 < exp - 1.0]
        out = [slo("recovered within %s of the CA's return" % fmt_s(RECOVERY_SLO_S),
                   rec is not None and rec <= RECOVERY_SLO_S,
                   "recovered in %s" % fmt_s(rec) if rec is not None else "never recovered"),
               slo("0 failed requests after the recovery",
                   slis.get("failed_after_recovery") == 0,
                   "%s failed after the recovery" % slis.get("failed_after_recovery")),
               slo("no failure before the first SVID expired", not early,
                   "%d failed before expiry" % len(early)),
               slo("the agents failed closed and said why", bool(f.get("reasons")),
                   "; ".join("%s: %s" % (p, w[:100]) for p, w in f.get("reasons", {}).items())
                   or "no agent reported expiry"),
               slo("failures while the identities were expired (fail closed)", n["failed"] > 0,
                   "%d failed" % n["failed"])]
    elif name == "agent-restart":
        rec = slis.get("recovery_s")
        fs = r.marks.get("fault_start", 0)
        # ended before the kill: a request in flight when it came fails rightly
        early = [x for x in reqs if x["kind"] == "new" and not x["ok"] and
                 x["t"] + x["ms"] / 1000 - r.t0 < fs]
        tail = [x for x in reqs if x["kind"] == "long" and x["t"] - r.t0 > r.now_end - 2]
        out = [slo("recovered within %s of the agent's restart" % fmt_s(RECOVERY_SLO_S),
                   rec is not None and rec <= RECOVERY_SLO_S,
                   "recovered in %s" % fmt_s(rec) if rec is not None else "never recovered"),
               slo("no failure before the kill", not early, "%d failed" % len(early)),
               slo("0 failed requests after the recovery",
                   slis.get("failed_after_recovery") == 0,
                   "%s failed after the recovery" % slis.get("failed_after_recovery")),
               slo("long-lived clients reconnected after the restart",
                   tail and all(x["ok"] for x in tail),
                   "%d requests in the last 2 s, %d failed; %d connections dropped by the kill"
                   % (len(tail), sum(1 for x in tail if not x["ok"]), lg["dropped"]))]
    elif name == "clock-skew":
        sk = f.get("observed_skew_s")
        out = [zero_fail, zero_drop,
               slo("the agent's clock was off by %+d s" % f["skew_s"],
                   sk is not None and abs(sk - f["skew_s"]) <= 1, "observed %+d s" % (sk or 0)),
               slo("rotations under skew", all(v >= 1 for v in rot.values()),
                   ", ".join("%s %d" % kv for kv in rot.items()))]
    elif name == "root-rotation":
        steps = f.get("steps", {})
        new = set(f.get("new_roots", []))
        old = set(f.get("old_roots", []))
        bundles = f.get("bundles_at_end", {})
        only_new = bool(new) and all(set(b) <= new and b for b in bundles.values()) and \
            not any(set(b) & old for b in bundles.values())
        out = [zero_fail, zero_drop] + [
            slo("ca root %s done" % v, steps.get(v, {}).get("ok"),
                "ok" if steps.get(v, {}).get("ok") else
                "refused: %s" % (steps.get(v, {}).get("refusal") or "not reached"))
            for v in ("prepare", "activate", "retire")] + [
            slo("every agent's bundle holds only the new root", only_new,
                ", ".join("%s %s" % (p, ",".join(x[:12] for x in b)) for p, b in bundles.items()))]
    elif name == "intermediate-rotation":
        out = [zero_fail, zero_drop,
               slo("ca intermediate rotate done", f.get("rotate_ok"), str(f.get("rotate_ok"))),
               slo("every agent moved to the new intermediate within %s" % fmt_s(3 * r.ttl + 5),
                   f.get("moved_s") is not None,
                   "in %s" % fmt_s(f["moved_s"]) if f.get("moved_s") is not None else "no")]
    elif name == "broken-chain":
        ref = f.get("refused", {})
        out = [zero_fail, zero_drop,
               slo("every agent refused the broken chain and said why",
                   len(ref) == len(AGENTS), "; ".join("%s: %s" % (p, v["last_error"][:60])
                                                     for p, v in ref.items()) or "none refused"),
               slo("every agent kept its SVID meanwhile",
                   ref and all(v["kept_serial"] for v in ref.values()),
                   ", ".join("%s %s" % (p, "kept" if v["kept_serial"] else "REPLACED")
                             for p, v in ref.items())),
               slo("every agent renewed after the fix",
                   all(f.get("renewed_after_fix", {}).values()) and f.get("renewed_after_fix"),
                   str(f.get("renewed_after_fix")))]
    return out


# ---- the chart: a PNG with the standard library (zlib) --------------------

FONT = {  # 3x5 glyphs, rows top to bottom, 3 bits each
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001010010010", "8": "111101111101111",
    "9": "111101111001111", "%": "101001010100101", "S": "111100111001111",
    "-": "000000111000000", ".": "000000000000010", " ": "000000000000000",
    "A": "010101111101101", "B": "110101110101110", "C": "111100100100111",
    "D": "110101101101110", "E": "111100110100111", "F": "111100110100100",
    "G": "111100101101111", "H": "101101111101101", "I": "111010010010111",
    "K": "101101110101101", "L": "100100100100111", "M": "101111111101101",
    "N": "110101101101101", "O": "111101101101111", "P": "111101111100100",
    "R": "110101110101101", "T": "111010010010010", "U": "101101101101111",
    "W": "101101111111101", "Y": "101101010010010", "V": "101101101101010",
    "X": "101101010101101", "Z": "111001010100111", "J": "001001001101111",
    "Q": "111101101111001", "(": "010100100100010", ")": "010001001001010",
    ":": "000010000010000", "/": "001001010100100",
}


class Canvas:
    def __init__(self, w, h):
        self.w, self.h = w, h
        self.px = bytearray(b"\xff" * (w * h * 3))

    def set(self, x, y, c):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i:i + 3] = bytes(c)

    def rect(self, x0, y0, x1, y1, c):
        for y in range(max(0, int(y0)), min(self.h, int(y1))):
            for x in range(max(0, int(x0)), min(self.w, int(x1))):
                self.set(x, y, c)

    def line(self, x0, y0, x1, y1, c, width=1):
        x0, y0, x1, y1 = int(x0), int(y0), int(x1), int(y1)
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            for k in range(width):
                self.set(x0, y0 + k, c)
            if x0 == x1 and y0 == y1:
                break
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text(self, x, y, s, c=(0, 0, 0), scale=2):
        for ch in s.upper():
            g = FONT.get(ch, FONT[" "])
            for i, bit in enumerate(g):
                if bit == "1":
                    self.rect(x + (i % 3) * scale, y + (i // 3) * scale,
                              x + (i % 3 + 1) * scale, y + (i // 3 + 1) * scale, c)
            x += 4 * scale

    def png(self):
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3])
                       for y in range(self.h))

        def chunk(kind, data):
            return (struct.pack(">I", len(data)) + kind + data +
                    struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
        return (b"\x89PNG\r\n\x1a\n" +
                chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def chart(path, title, intervals, events, marks):
    W, H = 900, 460
    c = Canvas(W, H)
    left, right = 70, W - 20
    panels = [(40, 210), (260, 420)]  # (top, bottom) of each plot
    end = intervals[-1]["t1"] if intervals else 1
    X = lambda t: left + (right - left) * t / end  # noqa: E731
    c.text(left, 12, title)
    grid, axis = (225, 225, 225), (60, 60, 60)
    # Fault window shaded.
    if "fault_start" in marks:
        fe = marks.get("fault_end", end)
        for top, bot in panels:
            c.rect(X(marks["fault_start"]), top, X(fe), bot, (255, 232, 232))
        c.text(X(marks["fault_start"]) + 4, panels[1][0] + 4, "FAULT", (200, 80, 80))
    for top, bot in panels:
        for k in range(5):
            y = top + (bot - top) * k / 4
            c.line(left, y, right, y, grid)
        c.line(left, top, left, bot, axis)
        c.line(left, bot, right, bot, axis)
    def plot(panel, title, colors, labels, points):
        """A panel's title, its y labels (top to bottom) and a line through
        points: (x, fraction of the height) each, None for a gap."""
        top, bot = panel
        c.text(left, top - 14, title, colors[0])
        for k, lab in enumerate(labels):
            c.text(left - 12 - 8 * len(lab), top + (bot - top) * k / 4 - 4, lab)
        prev = None
        for p in points:
            xy = p and (p[0], bot - (bot - top) * p[1])
            if prev and xy:
                c.line(prev[0], prev[1], xy[0], xy[1], colors[1], 3)
            prev = xy

    # Success rate of new connections (0..100 %), the failed share shaded
    # from the top down.
    top, bot = panels[0]
    for iv in intervals:
        if iv["new_failed"] and iv["success_rate"] is not None:
            c.rect(X(iv["t0"]) + 1, top, X(iv["t1"]), bot - (bot - top) * iv["success_rate"],
                   (240, 150, 150))
    plot(panels[0], "NEW CONNECTIONS: SUCCESS %", ((0, 110, 0), (0, 140, 0)),
         ("100", "75", "50", "25", "0"),
         [None if iv["success_rate"] is None else
          (X((iv["t0"] + iv["t1"]) / 2), iv["success_rate"]) for iv in intervals])
    # Runway (seconds).
    rmax = max([iv["runway_s"] or 0 for iv in intervals] + [1])
    rmax = 4 * -(-int(rmax + 0.999) // 4)  # a multiple of 4: whole-second ticks
    plot(panels[1], "IDENTITY RUNWAY (S)", ((0, 60, 200), (0, 60, 200)),
         ["%d" % round(rmax * (4 - k) / 4) for k in range(5)],
         [None if iv["runway_s"] is None else (X(iv["t1"]), iv["runway_s"] / rmax)
          for iv in intervals])
    # Events: ticks across both panels; the time axis under them.
    for ev in events:
        x = X(ev["t"])
        for y in range(panels[0][0], panels[1][1], 4):
            c.set(int(x), y, (200, 80, 0))
    for k in range(0, int(end) + 1, max(1, int(end // 10) or 1)):
        c.text(X(k) - 4, panels[1][1] + 8, "%d" % k)
    c.text(right - 80, panels[1][1] + 24, "TIME (S)")
    with open(path, "wb") as f:
        f.write(c.png())


# ---- printing ----------------------------------------------------------------


def print_timeline(intervals, events):
    print("  %-11s %11s %9s %9s %14s %8s %4s" % ("interval", "new ok/fail", "p50", "p99",
                                                "long ok/f/drop", "runway", "CA"))
    evs = sorted(events, key=lambda e: e["t"])
    i = 0
    for iv in intervals:
        while i < len(evs) and evs[i]["t"] < iv["t0"]:
            print("  %9.1fs  >> %s" % (evs[i]["t"], evs[i]["what"]))
            i += 1
        ms = lambda v: "-" if v is None else "%.1fms" % v  # noqa: E731
        print("  %-11s %5d/%-5d %9s %9s %6d/%d/%d %8s %4s" % (
            "%g-%gs" % (iv["t0"], iv["t1"]), iv["new_ok"], iv["new_failed"], ms(iv["p50_ms"]),
            ms(iv["p99_ms"]), iv["long_ok"], iv["long_failed"], iv["long_dropped"],
            "-" if iv["runway_s"] is None else fmt_s(iv["runway_s"]),
            {True: "up", False: "DOWN", None: "-"}[iv["ca_up"]]))
    for e in evs[i:]:
        print("  %9.1fs  >> %s" % (e["t"], e["what"]))


# ---- run -------------------------------------------------------------------


def run_one(name, opts, out):
    ttl_default, desc, body = SCENARIOS[name]
    ttl = opts.ttl or ttl_default
    res = {"name": name, "description": desc, "ttl_s": ttl, "duration_s": opts.duration}
    print("\n== %s: %s (SVID TTL %s)" % (name, desc, fmt_s(ttl)), flush=True)
    why = skip_reason(name, lanyard_bin(), opts.compose)
    if why:
        print("  skipped: %s" % why)
        res.update(status="skipped", skip_reason=why)
        return res
    sdir = os.path.join(out, name)
    os.makedirs(sdir, exist_ok=True)
    if opts.compose:
        r = ComposeRun(name, ttl, opts.duration, sdir, opts)
    else:
        r = Run(name, ttl, opts.duration, sdir)
    r.facts["skew_s"] = opts.skew
    r.facts["outage_opt"] = opts.outage
    error = None
    try:
        r.up()
        r.start_samplers()
        if name == "clock-skew":
            body(r)
            r.start_traffic()
            r.event("traffic started; the %s agent's clock is %+d s off (libfaketime), "
                    "observed %+d s" % ("web", opts.skew, r.facts["observed_skew_s"]))
            r.sleep_until(r.duration)
        else:
            r.start_traffic()
            body(r)
        r.now_end = r.now()
        # The driver stops before the agent's count is read, so that both
        # count the same connections however slow the machine is.
        r.stop_traffic()
        r.hist1 = r.handshake_hist()
    except GamedayError as e:
        error = str(e)
    finally:
        if r.t0 is not None and not hasattr(r, "now_end"):
            r.now_end = r.now()
        r.cleanup()
    res["started_at"] = r.t0
    res["events"] = r.events
    res["marks"] = r.marks
    res["facts"] = {k: v for k, v in r.facts.items() if k not in ("back_at", "outage_opt")}
    if error or r.t0 is None:
        print("  ERROR: %s" % (error or "the scenario did not start"))
        res.update(status="error", error=error, slos=[])
        return res
    reqs, slis, intervals = analyze(r)
    slos = slos_for(r, slis, [dict(x, t=x["t"] + r.t0) for x in reqs])
    res.update(slis=slis, intervals=intervals, slos=slos,
               status="passed" if all(s["met"] for s in slos) else "failed",
               files={"requests": name + "/requests.jsonl", "chart": name + ".png",
                      "logs": name + "/logs"})
    print()
    print_timeline(intervals, r.events)
    n = slis["new_connections"]
    print("\n  new connections: %d requests, %d failed, p50 %s ms, p99 %s ms; long-lived: %d "
          "connections, %d dropped; rotations %s; runway min %s s%s" % (
              n["requests"], n["failed"], n["latency_ms"]["p50"], n["latency_ms"]["p99"],
              slis["long_lived"]["connections"], slis["long_lived"]["dropped"],
              ", ".join("%s %d" % kv for kv in slis["rotations"].items()),
              slis["runway_s"]["min"],
              "" if "recovery_s" not in slis else "; recovery %s s" % slis["recovery_s"]))
    hs = slis.get("handshake_ms")
    if hs:
        print("  mTLS handshakes (web's agent, outbound): %d; p50 <= %s ms, p99 <= %s ms" % (
            hs["handshakes"], hs["p50_at_most"], hs["p99_at_most"]))
    mf = ["%s %s %s" % (p, d, ", ".join("%s %d" % kv for kv in v.items()))
          for p, dirs in slis["mtls_failures"].items() for d, v in dirs.items()]
    if mf:
        print("  mTLS failures by reason (the agents' counts): " + "; ".join(mf))
    for s in slos:
        print("  %-6s %s: %s" % ("MET" if s["met"] else "MISSED", s["slo"], s["observed"]))
    chart(os.path.join(out, name + ".png"), "LANYARD GAMEDAY: " + name, intervals, r.events,
          r.marks)
    return res


def cmd_list():
    for name, (ttl, desc, _) in SCENARIOS.items():
        print("  %-22s %s (TTL %ds)" % (name, desc, ttl))
    print("\nrun them with: lanyard gameday run SCENARIO... (the local netns mesh), or with "
          "--compose\n(the docker-compose mesh; clock-skew is skipped there)")
    return 0


def cmd_run(opts):
    names = []
    for s in opts.scenarios:
        if s == "all":
            names += list(SCENARIOS)
        elif s in SCENARIOS:
            names.append(s)
        else:
            print("lanyard gameday: unknown scenario '%s' (lanyard gameday list)" % s,
                  file=sys.stderr)
            return 2
    if os.geteuid() != 0:
        print("lanyard gameday: needs root: %s; run it with sudo" % (
            "it measures inside the containers' network namespaces (nsenter)" if opts.compose
            else "it builds the local mesh (network namespaces, iptables)"), file=sys.stderr)
        return 2
    if opts.compose:
        why = compose_preflight(opts)
        if why:
            print("lanyard gameday --compose: %s" % why, file=sys.stderr)
            return 2

        # SIGTERM too takes the compose project down (run_one's cleanup).
        def on_term(*_):
            raise KeyboardInterrupt()
        signal.signal(signal.SIGTERM, on_term)
    elif not os.access(lanyard_bin(), os.X_OK):
        print("lanyard gameday: no lanyard binary at %s (set LANYARD)" % lanyard_bin(),
              file=sys.stderr)
        return 2
    out = opts.out or os.path.join(os.getcwd(), time.strftime("gameday-%Y%m%d-%H%M%S"))
    if os.path.isdir(out) and os.listdir(out):
        print("lanyard gameday: %s exists and is not empty" % out, file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    report = {"version": 1, "lanyard": lanyard_bin(), "started_at": time.time(),
              "options": {"ttl_s": opts.ttl, "duration_s": opts.duration, "skew_s": opts.skew,
                          "outage_s": opts.outage},
              "mesh": "compose" if opts.compose else "local",
              "scenarios": []}
    try:
        for name in dict.fromkeys(names):
            report["scenarios"].append(run_one(name, opts, out))
            write_report(out, report)
    except KeyboardInterrupt:
        print("\ninterrupted; the mesh is down", file=sys.stderr)
        report["interrupted"] = True
        write_report(out, report)
        return 130
    missed = [s["name"] for s in report["scenarios"] if s["status"] in ("failed", "error")]
    report["passed"] = not missed
    write_report(out, report)
    print("\n== summary (%s)" % out)
    for s in report["scenarios"]:
        extra = s.get("skip_reason") or s.get("error") or ""
        print("  %-22s %s%s" % (s["name"], s["status"].upper(), "  (%s)" % extra if extra
                                else ""))
    print("report: %s" % os.path.join(out, "report.json"))
    return 1 if missed else 0


def write_report(out, report):
    report["finished_at"] = time.time()
    tmp = os.path.join(out, "report.json.tmp")
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, os.path.join(out, "report.json"))


def main(argv):
    if argv and argv[0] == "_traffic":
        p = argparse.ArgumentParser()
        p.add_argument("--log", required=True)
        p.add_argument("--long", type=int, default=3)
        p.add_argument("--api", default="%s:%d" % API, help="HOST:PORT of api's app")
        p.add_argument("--gap", type=float, default=0.05)
        p.add_argument("--long-gap", type=float, default=0.25)
        p.add_argument("--timeout", type=float, default=3.0)
        return traffic_main(p.parse_args(argv[1:]))
    if argv and argv[0] == "_sample":
        p = argparse.ArgumentParser()
        p.add_argument("--url", required=True)
        p.add_argument("--log", required=True)
        p.add_argument("--every", type=float, default=0.5)
        return sample_main(p.parse_args(argv[1:]))
    p = argparse.ArgumentParser(
        prog="lanyard gameday", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n", 1)[1])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the scenarios")
    run = sub.add_parser("run", help="run scenarios ('all': every one)")
    run.add_argument("scenarios", nargs="+", metavar="SCENARIO")
    run.add_argument("--out", help="the report folder (default: ./gameday-DATE-TIME)")
    run.add_argument("--ttl", type=parse_duration,
                     help="the SVID TTL (default: each scenario's own, see list)")
    run.add_argument("--duration", type=parse_duration, default=30.0,
                     help="how long each scenario drives traffic (default 30s)")
    run.add_argument("--outage", type=parse_duration,
                     help="ca-outage-short/-long: how long the CA stays down (default: "
                     "short: within the runway; long: past the first expiry)")
    run.add_argument("--skew", type=int, default=5,
                     help="clock-skew: the agent's clock offset in seconds (default +5)")
    run.add_argument("--compose", action="store_true",
                     help="run on the docker-compose mesh (deploy/compose/docker-compose.yml) "
                     "under its own project, lanyard-gameday-PID, taken down (-v) at the end; "
                     "clock-skew is skipped there")
    run.add_argument("--image", default=os.environ.get("LANYARD_IMAGE", "lanyard:local"),
                     help="--compose: Lanyard's image (default $LANYARD_IMAGE or lanyard:local)")
    run.add_argument("--app-image",
                     default=os.environ.get("LANYARD_APP_IMAGE", "lanyard-demo-app:local"),
                     help="--compose: the demo app's image (default $LANYARD_APP_IMAGE or "
                     "lanyard-demo-app:local)")
    a = p.parse_args(argv)
    if a.cmd == "list":
        return cmd_list()
    if a.ttl is not None:
        a.ttl = int(max(5, a.ttl))
    return cmd_run(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
