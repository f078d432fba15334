/**
 * @module
 * Request/response over the IPC channel of a forked child (both ends), plus helpers to fork the
 * benchmark's own children and make them die with the parent.
 */
import { fork, type ChildProcess } from 'node:child_process';

export interface Request {
  id: number;
  cmd: string;
  [key: string]: unknown;
}

export interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  [key: string]: unknown;
}

/** Child side: answers requests with `handler`; exits when the parent goes away. */
export function serve(handler: (req: Request) => Promise<Record<string, unknown>> | Record<string, unknown>): void {
  process.on('disconnect', () => process.exit(0));
  process.on('message', (msg: Request) => {
    Promise.resolve()
      .then(() => handler(msg))
      .then(
        (result: Record<string, unknown>) => process.send!({ ...result, id: msg.id, ok: true }),
        (err: unknown) => process.send!({ id: msg.id, ok: false, error: err instanceof Error ? err.stack : String(err) }),
      );
  });
}

/** Parent side of one forked child. */
export class Child {
  readonly proc: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private exited: Error | undefined;

  constructor(script: string, args: string[] = []) {
    this.proc = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    this.proc.on('message', (msg: Reply) => {
      const w = this.waiting.get(msg.id);
      if (!w) return;
      this.waiting.delete(msg.id);
      if (msg.ok) w.resolve(msg);
      else w.reject(new Error(`${script}: ${msg.error}`));
    });
    this.proc.on('exit', (code, signal) => {
      this.exited = new Error(`${script} exited (code ${code}, signal ${signal})`);
      for (const w of this.waiting.values()) w.reject(this.exited);
      this.waiting.clear();
    });
  }

  get alive(): boolean {
    return this.exited === undefined;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Sends `cmd` and resolves with the reply. */
  call<T extends Record<string, unknown> = Record<string, unknown>>(cmd: string, args: Record<string, unknown> = {}): Promise<Reply & T> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (r: Reply) => void, reject });
      this.proc.send({ ...args, id, cmd });
    });
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}
