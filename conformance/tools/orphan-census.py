#!/usr/bin/env python3
# conformance --sentry-only DIR > T; conformance/tools/orphan-census.py T
# Orphaning census over `conformance --sentry-only` traces (heuristic, sound for what it
# counts): a step in which a process dies (its op is exit/thread_exit, or the actor goes
# zombie/gone) and an actor stopped before the step is running or dead after it, while
# the step's op sends no SIGCONT/SIGKILL and is no hangup/tiocnotty, is an orphaning
# (exit.rs kill_orphaned_pgrp: SIGHUP to the stopped members, SIGCONT to all). Every actor the step touched is
# counted by its state before the step and what it did.
import re, sys, collections
txt = open(sys.argv[1]).read()
cnt = collections.Counter(); events = 0; scen = 0
for s in txt.split('\n== ')[1:]:
    steps = re.split(r'\nstep \d+: ', s)[1:]
    prev = {}; hit = False
    for st in steps:
        lines = st.split('\n'); op = lines[0]
        cur = dict(x.split('=') for x in re.search(r'state: (.*)', st).group(1).split())
        sigs = collections.defaultdict(list)
        for l in lines:
            m = re.match(r'\s+signal (\S+): (\S+)', l)
            if m: sigs[m.group(1)].append(m.group(2))
        died = [a for a, v in cur.items() if v in ('zombie', 'gone') and prev.get(a) not in ('zombie', 'gone', None)]
        excluded = re.search(r'SIGCONT|SIGKILL|\b9\b|\b18\b|hangup|tiocnotty', op)
        woke = [a for a, v in cur.items() if prev.get(a) == 'stopped' and v != 'stopped']
        if died and woke and not excluded:
            events += 1; hit = True
            for a, v in cur.items():
                p = prev.get(a)
                if p is None or a in died and a not in woke: continue
                got = sigs.get(a, [])
                if not got and p == v: continue
                out = 'handler ' + '+'.join(got) if got else ('died' if v in ('zombie', 'gone') else 'continued' if p == 'stopped' else v)
                cnt[(p, out)] += 1
        prev = cur
    scen += hit
print(f'{events} orphanings with a stopped member, in {scen} scenarios; members touched (state before -> what happened):')
for (p, out), n in sorted(cnt.items()):
    print(f'  {p:8} -> {out}: {n}')
