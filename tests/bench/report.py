#!/usr/bin/env python3
"""The benchmark's table, target checks and charts, from results.tsv.

  report.py DIR            prints the table (Markdown) and the targets
  report.py --charts DIR   draws DIR/*.png with gnuplot
  report.py --check DIR    exits 1, naming them, if any peer lacks a
                           figure (the smoke test's assertion)
  report.py --readme DIR docs/performance.md
                           copies DIR/table.md into docs/performance.md between the
                           <!-- bench:begin --> and <!-- bench:end --> lines

results.tsv holds "peer<TAB>figure<TAB>value" lines written by run.sh;
"-" or "nan" mean the peer has no such figure. Nothing here is typed in:
every number comes from that file.
"""
import math
import os
import subprocess
import sys

PEERS = ["direct", "lanyard", "stunnel", "haproxy", "haproxy-plain"]
CA_PEERS = ["lanyard-join", "lanyard-mtls", "cfssl-authsign"]
HIGHER, LOWER = 1, -1

# figure, label, which way is better
FIGURES = [
    ("bulk_gbps", "bulk throughput, Gbit/s (iperf3, 1 stream, median of 3)", HIGHER),
    ("cpu_s_per_gb", "proxy CPU s per GB (both proxies)", LOWER),
    ("one_conn_p50_ms", "latency p50, 1 keep-alive conn, ms", LOWER),
    ("added_p50_ms", "added p50 over direct, 1 conn, ms", LOWER),
    ("one_conn_p99_ms", "latency p99, 1 keep-alive conn, ms", LOWER),
    ("rate16_p50_ms", "latency p50, 16 conns at a fixed rate, ms", LOWER),
    ("rate16_p99_ms", "latency p99, 16 conns at a fixed rate, ms", LOWER),
    ("vcpu_per_1000rps", "vCPU per 1,000 req/s, per proxy (1 KiB)", LOWER),
    ("conns_per_s", "new connections/s (one request each, median of 3)", HIGHER),
    ("cpu_s_per_1000_conns", "proxy CPU s per 1,000 connections", LOWER),
    ("idle_rss_kb_client", "idle RSS, client side, KiB", LOWER),
    ("idle_rss_kb_server", "idle RSS, server side, KiB", LOWER),
]


def load(d):
    r = {}
    for line in open(os.path.join(d, "results.tsv")):
        peer, fig, val = line.rstrip("\n").split("\t")
        try:
            v = float(val)
            r[(peer, fig)] = None if math.isnan(v) else v
        except ValueError:
            r[(peer, fig)] = None
    for p in PEERS:  # derived: added latency over direct
        a, b = r.get((p, "one_conn_p50_ms")), r.get(("direct", "one_conn_p50_ms"))
        if p != "direct" and a is not None and b is not None:
            r[(p, "added_p50_ms")] = a - b
    return r


def idle_figures(r):
    counts = sorted({int(f.split("_")[4]) for (_, f) in r if f.startswith("kb_per_idle_conn_")})
    out = []
    for n in counts:
        for side in ("client", "server"):
            out.append(("kb_per_idle_conn_%d_%s" % (n, side),
                        "KiB per idle conn, %s side (%s conns)" % (side, f"{n:,}"), LOWER))
        for side in ("client", "server"):
            out.append(("rss_kb_after_%d_%s" % (n, side),
                        "RSS 3 s after the %s conns closed, %s side, KiB" % (f"{n:,}", side), LOWER))
    return out


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3f" % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return "%.2fx" % (a / b)


def table(r):
    rows = ["| figure | " + " | ".join(PEERS) + " | lanyard/stunnel | lanyard/haproxy | lanyard/haproxy-plain |",
            "|---" * (len(PEERS) + 4) + "|"]
    for fig, label, _ in FIGURES + idle_figures(r):
        vals = [r.get((p, fig)) for p in PEERS]
        if all(v is None for v in vals):
            continue
        lan = r.get(("lanyard", fig))
        rows.append("| %s | %s | %s | %s | %s |" % (
            label, " | ".join(fmt(v) for v in vals),
            ratio(lan, r.get(("stunnel", fig))), ratio(lan, r.get(("haproxy", fig))),
            ratio(lan, r.get(("haproxy-plain", fig)))))
    rows.append("")
    rows.append("| CA: certificates issued/s, authenticated | " + " | ".join(CA_PEERS) + " | lanyard-join/cfssl | lanyard-mtls/cfssl |")
    rows.append("|---" * (len(CA_PEERS) + 3) + "|")
    c = [r.get((p, "certs_per_s")) for p in CA_PEERS]
    rows.append("| certs/s (16 connections) | %s | %s | %s |" % (
        " | ".join(fmt(v) for v in c), ratio(c[0], c[2]), ratio(c[1], c[2])))
    return "\n".join(rows)


def targets(r):
    """PRODUCT.md's performance targets, checked against this run."""
    g = lambda p, f: r.get((p, f))
    out = []

    def check(name, ok, detail):
        out.append("| %s | %s | %s |" % (name, "met" if ok else ("MISSED" if ok is False else "no figure"), detail))

    def both(*vals):
        return None if any(v is None for v in vals) else True

    lan, stn, hpl = g("lanyard", "bulk_gbps"), g("stunnel", "bulk_gbps"), g("haproxy-plain", "bulk_gbps")
    check("bulk ≥ 1.5x stunnel and ≥ 70% of plaintext HAProxy",
          both(lan, stn, hpl) and lan >= 1.5 * stn and lan >= 0.7 * hpl,
          "%s and %s" % (ratio(lan, stn), ratio(lan, hpl)))
    la, ha = g("lanyard", "added_p50_ms"), g("haproxy", "added_p50_ms")
    check("added p50 (1 conn) ≤ HAProxy's", both(la, ha) and la <= ha,
          "%s ms vs %s ms" % (fmt(la), fmt(ha)))
    lc, sc, hc = g("lanyard", "conns_per_s"), g("stunnel", "conns_per_s"), g("haproxy", "conns_per_s")
    check("new connections/s ≥ 5x stunnel and HAProxy",
          both(lc, sc, hc) and lc >= 5 * sc and lc >= 5 * hc, "%s and %s" % (ratio(lc, sc), ratio(lc, hc)))
    rc, rs = g("lanyard", "idle_rss_kb_client"), g("lanyard", "idle_rss_kb_server")
    check("idle agent RSS ≤ 4 MB", both(rc, rs) and max(rc, rs) * 1.024 <= 4000,
          "%s KiB and %s KiB" % (fmt(rc), fmt(rs)))
    idle = [f for f, _, _ in idle_figures(r) if f.startswith("kb_per_idle_conn_")]
    big = max((int(f.split("_")[4]) for f in idle), default=None)
    if big is not None:
        c, s = g("lanyard", "kb_per_idle_conn_%d_client" % big), g("lanyard", "kb_per_idle_conn_%d_server" % big)
        check("≤ 40 KB per idle mTLS connection per agent", both(c, s) and max(c, s) * 1.024 <= 40,
              "%s KiB and %s KiB (%s conns)" % (fmt(c), fmt(s), f"{big:,}"))
    v = g("lanyard", "vcpu_per_1000rps")
    check("vCPU per 1,000 req/s ≤ 0.05 (a quarter of Istio's 0.20)", both(v) and v <= 0.05,
          "%s vCPU" % fmt(v))
    cj, cm, cf = g("lanyard-join", "certs_per_s"), g("lanyard-mtls", "certs_per_s"), g("cfssl-authsign", "certs_per_s")
    check("CA certificates/s ≥ 2x cfssl serve", both(cj, cm, cf) and min(cj, cm) >= 2 * cf,
          "join %s, mTLS %s" % (ratio(cj, cf), ratio(cm, cf)))
    return "| target | result | this run |\n|---|---|---|\n" + "\n".join(out)


def chart(d, r, name, title, figs, ylabel, peers=PEERS):
    if all(r.get((p, fig)) is None for p in peers for fig, _ in figs):
        return  # this run has no such figure (--no-ca)
    data = os.path.join(d, name + ".dat")
    with open(data, "w") as f:
        f.write("peer " + " ".join('"%s"' % lbl for _, lbl in figs) + "\n")
        for p in peers:
            vals = [r.get((p, fig)) for fig, _ in figs]
            if all(v is None for v in vals):
                continue
            f.write('"%s" %s\n' % (p, " ".join("NaN" if v is None else repr(v) for v in vals)))
    cols = " , ".join("'%s' using %d:xtic(1) title columnheader(%d)" % (data, i + 2, i + 2)
                      for i in range(len(figs)))
    script = """
set terminal pngcairo size 800,420 font 'DejaVu Sans,10'
set output '%s'
set title '%s'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel '%s'
set yrange [0:*]
set grid ytics
set key top right
plot %s
""" % (os.path.join(d, name + ".png"), title, ylabel, cols)
    subprocess.run(["gnuplot"], input=script.encode(), check=True)
    os.remove(data)


def charts(d, r):
    chart(d, r, "throughput", "Bulk throughput through each pair (iperf3)",
          [("bulk_gbps", "Gbit/s")], "Gbit/s")
    chart(d, r, "connections", "New connections per second (a new connection per request)",
          [("conns_per_s", "connections/s")], "connections/s")
    chart(d, r, "latency", "Request latency, 1 KiB responses",
          [("one_conn_p50_ms", "p50, 1 conn"), ("one_conn_p99_ms", "p99, 1 conn"),
           ("rate16_p50_ms", "p50, 16 conns"), ("rate16_p99_ms", "p99, 16 conns")], "ms")
    idle = [x for x in idle_figures(r) if x[0].startswith("kb_per_idle_conn_")]
    chart(d, r, "memory", "Memory per idle proxied connection",
          [(f, lbl.replace("KiB per idle conn, ", "")) for f, lbl, _ in idle], "KiB per connection",
          peers=[p for p in PEERS if p != "direct"])
    chart(d, r, "ca", "CA: certificates issued per second, authenticated",
          [("certs_per_s", "certificates/s")], "certificates/s", peers=CA_PEERS)


def missing(r):
    """(peer, figure) pairs this run should have and has not."""
    out = []
    for fig, _, _ in FIGURES + idle_figures(r):
        for p in PEERS:
            proxy_only = fig.startswith(("idle_rss", "kb_per_idle", "rss_kb_after", "cpu_s", "vcpu")) or fig == "added_p50_ms"
            if p == "direct" and proxy_only:
                continue
            if r.get((p, fig)) is None:
                out.append((p, fig))
    if any(f == "certs_per_s" for (_, f) in r):
        out += [(p, "certs_per_s") for p in CA_PEERS if r.get((p, "certs_per_s")) is None]
    return out


def readme(d, path):
    text = open(path).read()
    begin, end = "<!-- bench:begin -->\n", "<!-- bench:end -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    lines = open(os.path.join(d, "table.md")).read().rstrip().split("\n")
    # machine.txt's lines first (as a list), then the tables
    machine = [l for l in lines if l and not l.startswith("|")]
    tables = "\n".join(lines[len(machine):]).strip()
    body = "\n".join("- " + l for l in machine) + "\n\n" + tables + "\n"
    open(path, "w").write(head + begin + body + end + tail)


def main():
    if sys.argv[1] == "--readme":
        readme(sys.argv[2], sys.argv[3])
        return
    if sys.argv[1] == "--check":
        gaps = missing(load(sys.argv[2]))
        for p, fig in gaps:
            print("no figure: %s %s" % (p, fig))
        sys.exit(1 if gaps else 0)
    if sys.argv[1] == "--charts":
        d = sys.argv[2]
        charts(d, load(d))
        return
    d = sys.argv[1]
    r = load(d)
    print(open(os.path.join(d, "machine.txt")).read().rstrip())
    print()
    print(table(r))
    print()
    print(targets(r))


if __name__ == "__main__":
    main()
