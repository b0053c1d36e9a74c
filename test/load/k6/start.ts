/**
 * k6 scenario "start": /start_session only (the handshake entry), a fresh client token each time.
 * Build: pnpm bench:k6-check --build-only   Run: k6 run -e RELAY_URL=https://staging.example dist/start.js
 */
import { iterate, scenarioOptions } from './lib/driver.js';

export const options = scenarioOptions('start');

export default function (): void {
  iterate('start');
}
