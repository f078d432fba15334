/**
 * @module
 * What Linux says about a child process, from /proc: resident memory (VmRSS), open file
 * descriptors (how many, and of which kind), so tests can prove a process gives back what a
 * session or a fault took.
 */
import fs from 'node:fs';

/** Resident set size in KiB (VmRSS from /proc/<pid>/status). */
export function rssKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

/** How many file descriptors `pid` has open (entries of /proc/<pid>/fd). */
export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * The open descriptors of `pid` grouped by kind (`socket`, `pipe`, `anon_inode:[eventfd]`, or
 * `file` for paths), for failure messages that say what leaked.
 */
export function fdKinds(pid: number): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let link: string;
    try {
      link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while listing
    }
    const kind = link.startsWith('/') ? 'file' : link.replace(/:\[\d+\]$/, '');
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}
