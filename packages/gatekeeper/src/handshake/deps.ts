/** What the handshake handlers need; they never see req/res. */
import type { Clock } from '@zax/protocol';
import type { Config } from '../config.js';
import type { CoreClient } from '../core-client.js';
import type { DifficultyProvider } from '../difficulty.js';
import type { Logger } from '@zax/service';
import type { GatekeeperMetrics } from '../metrics.js';
import type { HandshakeStore } from './store.js';

export interface HandshakeDeps {
  readonly config: Config;
  readonly store: HandshakeStore;
  readonly clock: Clock;
  /** CSPRNG bytes; tests inject fixed relay tokens through it. */
  readonly random: (n: number) => Uint8Array;
  readonly difficulty: DifficultyProvider;
  readonly core: CoreClient;
  readonly log: Logger;
  readonly metrics: GatekeeperMetrics;
}

/** Whole milliseconds: expiries travel as integers (MintRequest.expiresAtMs). */
export const nowMsOf = (clock: Clock): number => Math.floor(clock.nowMs());
