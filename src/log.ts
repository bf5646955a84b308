// Debug logging, off by default: RCPP2P_DEBUG=nat,link (or *) writes timestamped lines to stderr.
// This is for diagnosing, not for users; user-facing output goes through progress events.

const enabled = new Set(
  (process.env['RCPP2P_DEBUG'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

export type Logger = (message: string) => void;

export function logger(component: string): Logger {
  if (!enabled.has('*') && !enabled.has(component)) return () => {};
  return (message) => {
    process.stderr.write(
      `[${new Date().toISOString()} rcpp2p:${component} ${process.pid}] ${message}\n`,
    );
  };
}
