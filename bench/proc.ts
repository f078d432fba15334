/**
 * @module
 * Reads CPU time and memory of processes (and whole process trees) from Linux /proc.
 *
 * CPU of a tree = the root's own utime+stime, plus its cutime+cstime (children it has already
 * reaped: their CPU moves there when the parent waits for them), plus utime+stime+cutime+cstime
 * of every descendant still in /proc (running or zombie, not yet reaped). A child counted live in
 * one snapshot and reaped before the next is counted in the root's cutime instead, so deltas stay
 * right while processes come and go. A reap between reading the root and listing its descendants
 * would count a child twice or not at all: the root is read again after the scan and the snapshot
 * is retaken if its cutime/cstime moved.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

function getconf(name: string, fallback: number): number {
  try {
    const n = Number(execFileSync('getconf', [name], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : fallback;
  } catch {
    return fallback;
  }
}

/** Clock ticks per second of the utime/stime fields. */
export const CLK_TCK = getconf('CLK_TCK', 100);
/** Bytes per page, for the rss field. */
export const PAGE_SIZE = getconf('PAGESIZE', 4096);

export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime+stime in ticks (the whole thread group). */
  self: number;
  /** cutime+cstime in ticks (reaped children). */
  children: number;
  /** Of self + children: the ticks spent in the kernel (stime+cstime). */
  kernel: number;
  /** Resident set size in bytes. */
  rss: number;
}

/** Parses /proc/<pid>/stat; undefined when the process is gone. */
export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ..." - comm may hold spaces and parentheses: split after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] = state (field 3), so field n is f[n - 3].
  return {
    pid,
    ppid: Number(f[1]),
    self: Number(f[11]) + Number(f[12]),
    children: Number(f[13]) + Number(f[14]),
    kernel: Number(f[12]) + Number(f[14]),
    rss: Number(f[21]) * PAGE_SIZE,
  };
}

/** All processes below `root` (children, grandchildren, ...), found by scanning /proc. */
export function descendants(root: number): ProcStat[] {
  const byParent = new Map<number, ProcStat[]>();
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const st = readStat(Number(name));
    if (!st) continue;
    const list = byParent.get(st.ppid);
    if (list) list.push(st);
    else byParent.set(st.ppid, [st]);
  }
  const out: ProcStat[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of byParent.get(queue.pop()!) ?? []) {
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

export interface TreeSample {
  /** Wall clock, ms (performance.now()). */
  at: number;
  /** CPU seconds used by the tree so far (see the module comment). */
  cpu: number;
  /** Of `cpu`, the seconds spent in the kernel (system time: the socket reads and writes). */
  kernel: number;
  /** Sum of the RSS of the live processes, bytes. */
  rss: number;
  /** Live processes in the tree, root included. */
  procs: number;
}

/**
 * One consistent sample of a process tree. With `tree` false only the root is read (cheaper,
 * for single-process relays), its cutime included all the same.
 */
export function sampleTree(root: number, tree = true): TreeSample | undefined {
  for (let attempt = 0; ; attempt++) {
    const before = readStat(root);
    if (!before) return undefined;
    const kids = tree ? descendants(root) : [];
    const after = readStat(root);
    if (!after) return undefined;
    if (after.children !== before.children && attempt < 5) continue;
    let ticks = after.self + after.children;
    let kernel = after.kernel;
    let rss = after.rss;
    for (const k of kids) {
      ticks += k.self + k.children;
      kernel += k.kernel;
      rss += k.rss;
    }
    return { at: performance.now(), cpu: ticks / CLK_TCK, kernel: kernel / CLK_TCK, rss, procs: 1 + kids.length };
  }
}

/** Proportional set size of a tree in bytes (shared pages split between sharers); slow-ish. */
export function pssTree(root: number): number {
  let total = 0;
  for (const pid of [root, ...descendants(root).map((d) => d.pid)]) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // gone or not readable
    }
  }
  return total;
}

/** True when some socket listens on 127.0.0.1:`port` (or 0.0.0.0:`port`), per /proc/net/tcp. */
export function isListening(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let text: string;
  try {
    text = readFileSync('/proc/net/tcp', 'latin1');
  } catch {
    return false;
  }
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    // local_address is cols[1] as "0100007F:1F90", st is cols[3]; 0A = LISTEN.
    if (cols[3] === '0A' && cols[1]?.endsWith(`:${hex}`)) return true;
  }
  return false;
}
