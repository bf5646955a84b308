// Every limit of the embedded rendezvous in one place, with OpenSSH's name for it where sshd has one.
// They keep one client (logged in or not) from taking the memory, the CPU or the console that every
// account shares. Authenticated connections are never dropped to make room for new ones.

export interface RendezvousLimits {
  /** Failed login attempts on one connection before it is closed (sshd: MaxAuthTries). */
  maxAuthTries: number;
  /** A connection that has not logged in after this long is closed (sshd: LoginGraceTime). */
  loginGraceMs: number;
  /** Connections not logged in yet, in all; past this new ones are closed at once (MaxStartups). */
  maxUnauthenticated: number;
  /** The same from one source address, an IPv6 /64 counting as one (PerSourceMaxStartups). */
  maxUnauthenticatedPerSource: number;
  /** Wrong passwords one source address may try at once before it must slow down. */
  passwordBurstPerSource: number;
  /** After the burst, a source earns one more password try per this many milliseconds. */
  passwordRefillMs: number;
  /** Logged-in connections per account; more logins are refused. */
  maxConnectionsPerAccount: number;
  /** Channels open at once on one connection: commands and socket channels (MaxSessions). */
  maxChannelsPerConnection: number;
  /** Channels open at once over all connections of one account. */
  maxChannelsPerAccount: number;
  /**
   * Socket channels (signaling and relays) open at once for one account. A relay whose receiving
   * end stops reading holds up to one SSH window (2 MiB) plus `socketHighWaterBytes` here.
   */
  maxSocketChannelsPerAccount: number;
  /** Unix sockets one connection may offer (streamlocal-forward). */
  maxForwardingsPerConnection: number;
  /** Unix sockets one account may offer over all its connections. */
  maxForwardingsPerAccount: number;
  /** Files and folders an account may have in its home (records, rendezvous folders). */
  maxEntriesPerAccount: number;
  /** Bytes of one peer record (the input of a publish). */
  maxRecordBytes: number;
  /** Longest Unix socket path accepted, in bytes. */
  maxSocketPathBytes: number;
  /** Output waiting in one connection's socket before commands and relays wait for it to drain. */
  socketHighWaterBytes: number;
}

export const DEFAULT_LIMITS: Readonly<RendezvousLimits> = {
  maxAuthTries: 6,
  loginGraceMs: 60_000,
  maxUnauthenticated: 64,
  maxUnauthenticatedPerSource: 8,
  passwordBurstPerSource: 10,
  passwordRefillMs: 6_000,
  maxConnectionsPerAccount: 64,
  maxChannelsPerConnection: 10,
  maxChannelsPerAccount: 32,
  maxSocketChannelsPerAccount: 16,
  maxForwardingsPerConnection: 8,
  maxForwardingsPerAccount: 64,
  maxEntriesPerAccount: 1024,
  maxRecordBytes: 16 * 1024,
  maxSocketPathBytes: 1024,
  socketHighWaterBytes: 256 * 1024,
};
