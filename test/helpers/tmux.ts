/**
 * A command in a detached tmux pane, as a user's terminal: a private tmux server (`-L`, no user
 * config), a pane of a given size that stays once its command exits, the screen as lines, keys
 * sent, and the command's exit code from a file its shell writes (tmux's `#{pane_dead_status}` is
 * not always filled in under load). `close()` kills the tmux server (its pane gets SIGHUP).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export const hasTmux = spawnSync("tmux", ["-V"]).status === 0;

export interface TmuxPane {
  /** The pid of the pane's shell (`sh -c command`). */
  readonly shellPid: number;
  /** The screen, one string per line. */
  lines(): string[];
  /** Sends tmux key names or characters (`send-keys`). */
  keys(...keys: string[]): void;
  /** The screen once `test` accepts it; rejects after `timeoutMs`, showing the last screen. */
  until(test: (lines: string[]) => boolean, what: string, timeoutMs?: number): Promise<string[]>;
  /** The command's exit code once it exited, within `timeoutMs`; `null` if it did not. */
  exitCode(timeoutMs?: number): Promise<number | null>;
  close(): void;
}

let panes = 0;

/** Runs `command` (a shell command line, run in `cwd`) in a new `width`×`height` pane. */
export function openPane(
  command: string,
  { cwd, width, height }: { cwd: string; width: number; height: number },
): TmuxPane {
  const socket = `stui-test-${process.pid}-${++panes}-${Date.now()}`;
  const exitFile = path.join(tmpdir(), `${socket}.exit`);
  const tmux = (...args: string[]): string => {
    const r = spawnSync("tmux", ["-L", socket, ...args], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const line = `cd ${cwd} && ${command}; echo $? > ${exitFile}`;
  tmux("-f", "/dev/null", "new-session", "-d", "-x", String(width), "-y", String(height), "-s", "t", "sh", "-c", line);
  tmux("set-option", "-t", "t", "remain-on-exit", "on");
  const lines = (): string[] => tmux("capture-pane", "-p", "-t", "t").replace(/\n$/, "").split("\n");
  const pane: TmuxPane = {
    shellPid: Number(tmux("display-message", "-p", "-t", "t", "#{pane_pid}").trim()),
    lines,
    keys: (...keys) => void tmux("send-keys", "-t", "t", ...keys),
    async until(test, what, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      let screen: string[] = [];
      while (Date.now() < deadline) {
        screen = lines();
        if (test(screen)) return screen;
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      throw new Error(`the pane never showed ${what}; the screen:\n${screen.join("\n")}`);
    },
    async exitCode(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const code = existsSync(exitFile) ? readFileSync(exitFile, "utf8").trim() : "";
        if (code !== "") return Number(code);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return null;
    },
    close() {
      spawnSync("tmux", ["-L", socket, "kill-server"]);
      rmSync(exitFile, { force: true });
    },
  };
  return pane;
}
