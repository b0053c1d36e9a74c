/**
 * k6 scenario "handshake": full sessions: start_session → verify_session (with proof of work) → prove.
 * Build: pnpm bench:k6-check --build-only   Run: k6 run -e RELAY_URL=https://staging.example dist/handshake.js
 */
import { iterate, scenarioOptions } from './lib/driver.js';

export const options = scenarioOptions('handshake');

export default function (): void {
  iterate('handshake');
}
